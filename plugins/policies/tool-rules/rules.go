// Command tool-rules is a purser policy that allows, asks for approval of,
// or denies tool calls by tool-name lists, by regex rules on the tool name
// and the raw params JSON with priorities, and by a mode (default,
// accept_edits, plan). See README.md for the exact precedence.
//
// This file is the plugin's logic and builds on any platform, so it is
// unit-tested on the host; wasm.go (wasip1 only) registers it.
package main

import (
	"regexp"
	"sort"
	"strconv"

	"github.com/purser-dev/purser/sdk/go/purser"
)

// Version is the plugin's version, reported in its manifest.
const Version = "1.0.0"

const configSchema = `{"type":"object","additionalProperties":false,"properties":{` +
	`"mode":{"enum":["default","accept_edits","plan"],"description":"fallback when no list or rule matches; default \"default\""},` +
	`"allow":{"type":"array","items":{"type":"string"},"description":"tool names allowed (exact, priority 0)"},` +
	`"ask":{"type":"array","items":{"type":"string"},"description":"tool names that need approval (exact, priority 0)"},` +
	`"deny":{"type":"array","items":{"type":"string"},"description":"tool names denied (exact; a deny always wins)"},` +
	`"read_only":{"type":"array","items":{"type":"string"},"description":"extra tools plan mode treats as read-only"},` +
	`"rules":{"type":"array","items":{"type":"object","additionalProperties":false,"required":["action"],"properties":{` +
	`"name":{"type":"string"},` +
	`"action":{"enum":["allow","ask","deny"]},` +
	`"tools":{"type":"array","items":{"type":"string"},"description":"exact tool names"},` +
	`"tool":{"type":"string","description":"RE2 regex matched against the whole tool name"},` +
	`"params":{"type":"string","description":"RE2 regex searched in the raw canonical params JSON"},` +
	`"priority":{"type":"integer","description":"higher first; default 0"},` +
	`"reason":{"type":"string"}}}}}}`

// Plugin declares the policy; it judges every tool.
func Plugin() *purser.Plugin {
	return purser.NewPolicy(purser.Manifest{
		Name:         "tool-rules",
		Version:      Version,
		Tools:        []string{purser.ToolAny},
		Description:  "Allow / ask / deny by tool-name lists, regex rules on tool name and params with priorities (an explicit deny always wins), and modes default, accept_edits, plan.",
		ConfigSchema: []byte(configSchema),
	}, func(cfg []byte) (purser.Policy, error) { return newPolicy(cfg) })
}

// Mode is the fallback behaviour.
type Mode string

// Modes.
const (
	// ModeDefault asks for Write, Edit, Bash, PythonCode and Delete and
	// allows everything else.
	ModeDefault Mode = "default"
	// ModeAcceptEdits allows Write and Edit, asks for Bash, PythonCode and
	// Delete, allows everything else.
	ModeAcceptEdits Mode = "accept_edits"
	// ModePlan allows only read-only tools (Read, Grep, Glob, WebFetch, LLM
	// plus config read_only) and denies every other tool, whatever the
	// allow and ask rules say.
	ModePlan Mode = "plan"
)

// ReadOnlyTools returns the tools plan mode allows by default.
func ReadOnlyTools() []string { return []string{"Read", "Grep", "Glob", "WebFetch", "LLM"} }

type action uint8

const (
	actAllow action = iota
	actAsk
	actDeny
)

type rule struct {
	name     string
	act      action
	priority int64
	order    int                 // position in config (lists first), for stable ties
	tools    map[string]struct{} // exact names; nil = not constrained by list
	toolRe   *regexp.Regexp      // anchored; nil = not constrained by regex
	paramsRe *regexp.Regexp      // unanchored; nil = any params
	reason   string              // fixed reason; "" = built per call (list rules)
	list     bool                // from allow/ask/deny lists: reason names the tool
}

// matches reports whether the rule applies to tool and params. A rule with
// both tools and tool matches either; a rule with neither matches every
// tool; params must match when given.
func (r *rule) matches(tool, params []byte) bool {
	if r.tools != nil || r.toolRe != nil {
		_, inList := r.tools[string(tool)]
		if !inList && (r.toolRe == nil || !r.toolRe.Match(tool)) {
			return false
		}
	}
	return r.paramsRe == nil || r.paramsRe.Match(params)
}

// Policy is the compiled config.
type Policy struct {
	mode     Mode
	deny     []*rule // deny rules, by priority (highest first), then config order
	others   []*rule // allow and ask rules, by priority, ask before allow at equal priority, then config order
	readOnly map[string]struct{}
	askTools map[string]struct{} // the mode's ask set (default, accept_edits)
}

type ruleConfig struct {
	Name     string   `json:"name"`
	Action   string   `json:"action"`
	Tools    []string `json:"tools"`
	Tool     *string  `json:"tool"`
	Params   *string  `json:"params"`
	Priority *int64   `json:"priority"`
	Reason   string   `json:"reason"`
}

type config struct {
	Mode     string       `json:"mode"`
	Allow    []string     `json:"allow"`
	Ask      []string     `json:"ask"`
	Deny     []string     `json:"deny"`
	ReadOnly []string     `json:"read_only"`
	Rules    []ruleConfig `json:"rules"`
}

func toolSet(where string, names []string) (map[string]struct{}, error) {
	m := make(map[string]struct{}, len(names))
	for i, n := range names {
		if n == "" {
			return nil, purser.BadConfig(where + "[" + strconv.Itoa(i) + "]: empty tool name")
		}
		m[n] = struct{}{}
	}
	return m, nil
}

func newPolicy(raw []byte) (*Policy, error) {
	var c config
	if err := purser.DecodeConfig(raw, &c); err != nil {
		return nil, err
	}
	p := &Policy{mode: Mode(c.Mode)}
	switch p.mode {
	case "":
		p.mode = ModeDefault
		fallthrough
	case ModeDefault:
		p.askTools, _ = toolSet("", []string{"Write", "Edit", "Bash", "PythonCode", "Delete"})
	case ModeAcceptEdits:
		p.askTools, _ = toolSet("", []string{"Bash", "PythonCode", "Delete"})
	case ModePlan:
	default:
		return nil, purser.BadConfig("mode: " + strconv.Quote(c.Mode) + " is not one of default, accept_edits, plan")
	}
	var err error
	if p.readOnly, err = toolSet("read_only", append(ReadOnlyTools(), c.ReadOnly...)); err != nil {
		return nil, err
	}
	var all []*rule
	for _, l := range []struct {
		key   string
		names []string
		act   action
	}{{"deny", c.Deny, actDeny}, {"ask", c.Ask, actAsk}, {"allow", c.Allow, actAllow}} {
		if len(l.names) == 0 {
			continue
		}
		set, err := toolSet(l.key, l.names)
		if err != nil {
			return nil, err
		}
		all = append(all, &rule{name: l.key + " list", act: l.act, tools: set, list: true})
	}
	for i, rc := range c.Rules {
		r, err := compileRule(i, rc)
		if err != nil {
			return nil, err
		}
		all = append(all, r)
	}
	for i, r := range all {
		r.order = i
		if r.act == actDeny {
			p.deny = append(p.deny, r)
		} else {
			p.others = append(p.others, r)
		}
	}
	sort.SliceStable(p.deny, func(i, j int) bool { return p.deny[i].priority > p.deny[j].priority })
	sort.SliceStable(p.others, func(i, j int) bool {
		a, b := p.others[i], p.others[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		return a.act > b.act // ask before allow at equal priority
	})
	return p, nil
}

func compileRule(i int, rc ruleConfig) (*rule, error) {
	where := "rules[" + strconv.Itoa(i) + "]"
	if rc.Name != "" {
		where += " (" + strconv.Quote(rc.Name) + ")"
	}
	r := &rule{name: rc.Name, reason: rc.Reason}
	if r.name == "" {
		r.name = "rules[" + strconv.Itoa(i) + "]"
	}
	switch rc.Action {
	case "allow":
		r.act = actAllow
	case "ask":
		r.act = actAsk
	case "deny":
		r.act = actDeny
	default:
		return nil, purser.BadConfig(where + ".action: " + strconv.Quote(rc.Action) + " is not one of allow, ask, deny")
	}
	if rc.Priority != nil {
		r.priority = *rc.Priority
	}
	if rc.Tools != nil {
		set, err := toolSet(where+".tools", rc.Tools)
		if err != nil {
			return nil, err
		}
		r.tools = set
	}
	var err error
	if rc.Tool != nil {
		if r.toolRe, err = regexp.Compile(`^(?:` + *rc.Tool + `)$`); err != nil {
			return nil, purser.BadConfig(where + ".tool: " + err.Error())
		}
	}
	if rc.Params != nil {
		if r.paramsRe, err = regexp.Compile(*rc.Params); err != nil {
			return nil, purser.BadConfig(where + ".params: " + err.Error())
		}
	}
	if r.reason == "" {
		switch r.act {
		case actDeny:
			r.reason = "Denied by tool-rules rule " + strconv.Quote(r.name)
		case actAsk:
			r.reason = "Approval required by tool-rules rule " + strconv.Quote(r.name)
		}
	}
	return r, nil
}

// Admit decides, in this order:
//  1. any matching deny (deny list or deny rule, at any priority) denies;
//     the reason comes from the highest-priority one (config order on ties);
//  2. in plan mode, a tool that is not read-only is denied;
//  3. the highest-priority matching allow or ask entry decides (the allow
//     and ask lists have priority 0; at equal priority ask beats allow);
//  4. otherwise the mode decides: default asks for Write, Edit, Bash,
//     PythonCode and Delete; accept_edits asks for Bash, PythonCode and
//     Delete; everything else (and every read-only tool in plan) is allowed.
func (p *Policy) Admit(req *purser.Request) (purser.Decision, error) {
	tool, params := req.Tool(), req.Params()
	for _, r := range p.deny {
		if r.matches(tool, params) {
			return p.decide(req, r), nil
		}
	}
	if p.mode == ModePlan {
		if _, ok := p.readOnly[string(tool)]; !ok {
			b := append(req.Scratch(), "Plan mode allows only read-only tools; "...)
			b = append(b, tool...)
			b = append(b, " is not one"...)
			return purser.DenyBytes(b), nil
		}
	}
	for _, r := range p.others {
		if r.matches(tool, params) {
			return p.decide(req, r), nil
		}
	}
	if _, ok := p.askTools[string(tool)]; ok {
		b := append(req.Scratch(), "Mode "...)
		b = append(b, p.mode...)
		b = append(b, " requires approval for "...)
		b = append(b, tool...)
		return purser.AskBytes(b), nil
	}
	return purser.Allow(), nil
}

func (p *Policy) decide(req *purser.Request, r *rule) purser.Decision {
	if r.act == actAllow {
		return purser.Allow()
	}
	if !r.list || r.reason != "" {
		if r.act == actDeny {
			return purser.Deny(r.reason)
		}
		return purser.Ask(r.reason)
	}
	b := append(req.Scratch(), "Tool "...)
	b = append(b, req.Tool()...)
	if r.act == actDeny {
		return purser.DenyBytes(append(b, " is on the tool-rules deny list"...))
	}
	return purser.AskBytes(append(b, " is on the tool-rules ask list: approval required"...))
}
