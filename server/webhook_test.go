package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/purser-dev/purser/enforcer"
)

func TestWebhookDeliversAlertsAndSurvivesClose(t *testing.T) {
	var mu sync.Mutex
	var got []alertBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a alertBody
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	defer srv.Close()
	w := NewWebhook(srv.URL+"/hooks/SECRET", 5*time.Second, 4, hclog.NewNullLogger())
	w.Notify(enforcer.Alert{Account: "team", ThresholdPct: 90, Level: enforcer.AlertWarning, Committed: 900, Limit: 1000})
	w.Notify(enforcer.Alert{Account: "team", Level: enforcer.AlertCritical, Overdrawn: true, Committed: 1100, Limit: 1000})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Notify(enforcer.Alert{Account: "late"}) // after Close: dropped, no panic
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0].ThresholdPct != 90 || got[0].Level != "warning" || got[1].CommittedNanos != 1100 || !got[1].Overdrawn {
		t.Errorf("delivered %+v", got)
	}
	if dropped, failed := w.Stats(); dropped != 1 || failed != 0 {
		t.Errorf("dropped %d failed %d; want 1 and 0", dropped, failed)
	}
}

func TestWebhookErrorsHideThePath(t *testing.T) {
	w := NewWebhook("http://127.0.0.1:1/hooks/SECRET", time.Second, 1, hclog.NewNullLogger())
	defer w.Close()
	err := w.send(enforcer.Alert{Account: "a"})
	if err == nil || contains(err.Error(), "SECRET") {
		t.Errorf("error %v must not contain the URL path", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
