package replay

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/purser-dev/purser/enforcer"
)

// Series is the cumulative money of a replay, step by step, in the order
// the steps ran (traces one after another).
type Series struct {
	Limit *enforcer.Nanos
	// Estimate and Actual are cumulative over admitted steps: what was
	// held and what was charged.
	Estimate []enforcer.Nanos
	Actual   []enforcer.Nanos
	Traces   []TraceSeries
	// Denials are each denied trace's first denial; Overruns the steps
	// where an account's committed spend went above its limit (the pool's
	// or a trace's). Y is where the chart marks them: on the trace's line
	// when traces are drawn one by one, else on the pooled actual.
	Denials  []Marker
	Overruns []Marker
}

// Marker is an event at a global step.
type Marker struct {
	Step      int // global, the chart's x
	Trace     string
	TraceStep int // the step's index in its trace, as the text report counts
	Y         enforcer.Nanos
	Pool      bool // an overrun of the pool (at a step of Trace)
}

// TraceSeries is one trace's cumulative charge from its first step.
type TraceSeries struct {
	Name   string
	Start  int // global index of the trace's first step
	Actual []enforcer.Nanos
}

func buildSeries(traces []*Trace, recs []record, limit *enforcer.Nanos, run *runState) *Series {
	s := &Series{Limit: limit, Estimate: make([]enforcer.Nanos, len(recs)), Actual: make([]enforcer.Nanos, len(recs))}
	perTrace := len(traces) > 1 && len(traces) <= chartTraceLines
	var est, act enforcer.Nanos
	cur, denied, over := int32(-1), false, false
	for i, rc := range recs {
		if rc.verdict == enforcer.Allow {
			est += rc.held + rc.extended
			act += rc.charged
		}
		s.Estimate[i], s.Actual[i] = est, act
		if rc.trace != cur {
			cur, denied, over = rc.trace, false, false
			s.Traces = append(s.Traces, TraceSeries{Name: traces[rc.trace].Name, Start: i})
		}
		ts := &s.Traces[len(s.Traces)-1]
		prev := enforcer.Nanos(0)
		if n := len(ts.Actual); n > 0 {
			prev = ts.Actual[n-1]
		}
		ts.Actual = append(ts.Actual, prev+rc.charged)
		y := act
		if perTrace {
			y = prev + rc.charged
		}
		if rc.verdict == enforcer.Deny && !denied {
			denied = true
			s.Denials = append(s.Denials, Marker{Step: i, Trace: ts.Name, TraceStep: int(rc.step), Y: y})
		}
		if l := traceLimitOf(run, rc.trace); l != nil && !over && prev+rc.charged > *l {
			over = true
			s.Overruns = append(s.Overruns, Marker{Step: i, Trace: ts.Name, TraceStep: int(rc.step), Y: y})
		}
	}
	if limit != nil {
		if i := sort.Search(len(s.Actual), func(i int) bool { return s.Actual[i] > *limit }); i < len(s.Actual) {
			s.Overruns = append(s.Overruns, Marker{Step: i, Trace: traces[recs[i].trace].Name, TraceStep: int(recs[i].step), Y: s.Actual[i], Pool: true})
		}
	}
	return s
}

func traceLimitOf(run *runState, trace int32) *enforcer.Nanos {
	if run == nil {
		return nil
	}
	return run.limits[trace]
}

// chartTraceLines is the most traces drawn one line each; beyond it the
// chart would be noise, so only the pooled lines are drawn.
const chartTraceLines = 8

// Chart geometry, in SVG user units.
const (
	chartW, chartH                     = 960, 540
	marginL, marginR, marginT, marginB = 96, 24, 48, 64
	maxPoints                          = 1500 // per polyline
)

// traceColors avoid the pooled lines' blue and orange and the limit's red.
var traceColors = []string{"#8e44ad", "#16a085", "#7f6000", "#2c3e50", "#d63384", "#6b8e23", "#1a237e", "#7f8c8d"}

// WriteSVG draws the series as a standalone SVG: cumulative estimate,
// cumulative actual and the limit over the steps, one thin line per trace
// when there are few traces; axes in steps and USD.
func (s *Series) WriteSVG(w io.Writer, title string) error {
	var b strings.Builder
	n := len(s.Actual)
	ymax := s.yMax()
	c := chartCoords{n: max(n-1, 1), ymax: ymax}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", marginL, html.EscapeString(title))
	c.axes(&b)
	var legend []legendItem
	if len(s.Traces) > 1 && len(s.Traces) <= chartTraceLines {
		for i, t := range s.Traces {
			col := traceColors[i%len(traceColors)]
			c.line(&b, t.Start, t.Actual, col, "1.2", "")
			legend = append(legend, legendItem{name: "actual: " + shorten(t.Name, 28), color: col, width: "1.2"})
		}
	}
	if s.Limit != nil {
		y := c.y(float64(*s.Limit))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e74c3c" stroke-width="2" stroke-dasharray="8 4"/>`+"\n",
			marginL, y, chartW-marginR, y)
		legend = append(legend, legendItem{name: "limit " + s.Limit.String(), color: "#e74c3c", width: "2", dash: "8 4"})
	}
	c.line(&b, 0, s.Estimate, "#2980b9", "2.5", "6 3")
	c.line(&b, 0, s.Actual, "#e67e22", "2.5", "")
	legend = append([]legendItem{{name: "cumulative estimate (held)", color: "#2980b9", width: "2.5", dash: "6 3"},
		{name: "cumulative actual (charged)", color: "#e67e22", width: "2.5"}}, legend...)
	legend = append(legend, c.markers(&b, s.Denials, s.Overruns)...)
	writeLegend(&b, legend)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// markers draws each first denial as a hollow triangle and each overrun
// as a filled red circle, with a <title> naming the trace (a tooltip).
func (c chartCoords) markers(b *strings.Builder, denials, overruns []Marker) []legendItem {
	var legend []legendItem
	for _, m := range denials {
		x, y := c.x(float64(m.Step)), c.y(float64(m.Y))
		fmt.Fprintf(b, `<path class="first-denial" d="M%.1f %.1f l-5 9 h10 z" fill="white" stroke="#c0392b" stroke-width="1.5"><title>first denial: %s, step %d</title></path>`+"\n",
			x, y-6, html.EscapeString(m.Trace), m.TraceStep)
	}
	for _, m := range overruns {
		who := m.Trace
		if m.Pool {
			who = "the pool, at " + m.Trace
		}
		fmt.Fprintf(b, `<circle class="overrun" cx="%.1f" cy="%.1f" r="5" fill="#e74c3c" stroke="#7b241c"><title>over its limit: %s, step %d</title></circle>`+"\n",
			c.x(float64(m.Step)), c.y(float64(m.Y)), html.EscapeString(who), m.TraceStep)
	}
	if len(denials) > 0 {
		legend = append(legend, legendItem{name: fmt.Sprintf("first denial of a trace (%d)", len(denials)), color: "#c0392b", width: "1.5", marker: "denial"})
	}
	if len(overruns) > 0 {
		legend = append(legend, legendItem{name: fmt.Sprintf("account over its limit (%d)", len(overruns)), color: "#e74c3c", width: "1.5", marker: "overrun"})
	}
	return legend
}

func (s *Series) yMax() float64 {
	var m enforcer.Nanos
	if n := len(s.Actual); n > 0 {
		m = max(s.Actual[n-1], s.Estimate[n-1])
	}
	if s.Limit != nil {
		m = max(m, *s.Limit)
	}
	if m <= 0 {
		m = enforcer.NanosPerUSD / 100
	}
	return niceCeil(float64(m) * 1.05)
}

type chartCoords struct {
	n    int
	ymax float64 // nanos
}

func (c chartCoords) x(i float64) float64 {
	return marginL + i/float64(c.n)*float64(chartW-marginL-marginR)
}

func (c chartCoords) y(nanos float64) float64 {
	return float64(chartH-marginB) - nanos/c.ymax*float64(chartH-marginT-marginB)
}

func (c chartCoords) axes(b *strings.Builder) {
	x0, y0, x1, y1 := marginL, chartH-marginB, chartW-marginR, marginT
	for i := 0; i <= 5; i++ {
		v := c.ymax * float64(i) / 5
		y := c.y(v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x1, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, usdLabel(v))
	}
	every := int(niceCeil(float64(c.n) / 6))
	for step := 0; step <= c.n; step += max(every, 1) {
		x := c.x(float64(step))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`+"\n", x, y0, x, y0+5)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x, y0+20, step)
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x0, y0, x1, y0)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", x0, y0, x0, y1)
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">steps (tool and LLM calls, in replay order)</text>`+"\n",
		(x0+x1)/2, chartH-18)
	fmt.Fprintf(b, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle">cumulative spend (USD)</text>`+"\n", (y0+y1)/2)
}

// line draws a cumulative series starting at global step start, thinned
// to at most maxPoints points (always keeping the last).
func (c chartCoords) line(b *strings.Builder, start int, v []enforcer.Nanos, color, width, dash string) {
	if len(v) == 0 {
		return
	}
	stride := max(1, (len(v)+maxPoints-1)/maxPoints)
	b.WriteString(`<polyline fill="none" stroke="` + color + `" stroke-width="` + width + `"`)
	if dash != "" {
		b.WriteString(` stroke-dasharray="` + dash + `"`)
	}
	b.WriteString(` stroke-linejoin="round" points="`)
	for i := 0; i < len(v); i += stride {
		fmt.Fprintf(b, "%.1f,%.1f ", c.x(float64(start+i)), c.y(float64(v[i])))
	}
	if (len(v)-1)%stride != 0 {
		fmt.Fprintf(b, "%.1f,%.1f", c.x(float64(start+len(v)-1)), c.y(float64(v[len(v)-1])))
	}
	b.WriteString("\"/>\n")
}

type legendItem struct{ name, color, width, dash, marker string }

func writeLegend(b *strings.Builder, items []legendItem) {
	x, y := marginL+14, marginT+14
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="290" height="%d" fill="white" fill-opacity="0.85" stroke="#ccc"/>`+"\n",
		x-8, y-12, 18*len(items)+8)
	for i, it := range items {
		yy := y + 18*i
		dash := ""
		if it.dash != "" {
			dash = ` stroke-dasharray="` + it.dash + `"`
		}
		switch it.marker {
		case "denial":
			fmt.Fprintf(b, `<path d="M%d %d l-5 9 h10 z" fill="white" stroke="%s" stroke-width="1.5"/>`+"\n", x+14, yy-5, it.color)
		case "overrun":
			fmt.Fprintf(b, `<circle cx="%d" cy="%d" r="5" fill="%s" stroke="#7b241c"/>`+"\n", x+14, yy, it.color)
		default:
			fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%s"%s/>`+"\n", x, yy, x+28, yy, it.color, it.width, dash)
		}
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", x+36, yy+4, html.EscapeString(it.name))
	}
}

// niceCeil rounds nanos up to 1, 2 or 5 x a power of ten, so that the
// five gridlines land on round amounts.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// usdLabel formats a gridline amount (nanos) as USD for display only.
func usdLabel(nanos float64) string {
	usd := nanos / float64(enforcer.NanosPerUSD)
	switch {
	case usd == 0:
		return "$0"
	case usd >= 100:
		return fmt.Sprintf("$%.0f", usd)
	case usd >= 0.01:
		return fmt.Sprintf("$%.2f", usd)
	default:
		return fmt.Sprintf("$%.4g", usd)
	}
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	// Keep both ends: trace names differ at the end (task0-trial0).
	head := n / 3
	return string(r[:head]) + "…" + string(r[len(r)-(n-head-1):])
}
