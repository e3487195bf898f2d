package purser

import (
	"strconv"

	"github.com/purser-dev/purser/abi"
)

// Instance is one running copy of a plugin: its buffers, its built
// estimator or policy, and the ABI dispatch. Inside a wasm guest the SDK
// owns exactly one (the host never calls an instance concurrently); on the
// host, tests create their own to exercise the same code path:
//
//	x := purser.NewInstance(plugin())
//	if res := x.Init([]byte(`{"limit_usd":"0.10"}`)); res != nil { ... }
//	in := x.Alloc(len(record)); copy(in, record)
//	out := x.Call(abi.ExportAdmit, in)   // a result record; abi.ParseResult reads it
//
// Byte slices returned by Manifest, Init and Call are reused by the next
// call into the instance.
type Instance struct {
	p        *Plugin
	est      Estimator
	pol      Policy
	ready    bool
	manifest []byte
	in       []byte // the buffer last handed to the host by Alloc
	out      []byte // the result record, reused
	req      Request
}

// scratchSize is the initial room of Request.Scratch.
const scratchSize = 512

// NewInstance returns an uninitialised instance of p.
func NewInstance(p *Plugin) *Instance {
	return &Instance{p: p, out: make([]byte, 0, 256), req: Request{scratch: make([]byte, 0, scratchSize)}}
}

// Manifest returns the manifest JSON (built once, and again after Init):
// after a successful Init, the tools of an estimator or policy that is a
// ToolLister replace the declared ones.
func (x *Instance) Manifest() []byte {
	if x.manifest == nil && x.p != nil {
		m := x.p.manifest
		if tl, ok := x.built().(ToolLister); ok && x.ready {
			if tools := tl.Tools(); len(tools) > 0 {
				m.Tools = tools
			}
		}
		x.manifest = m.AppendJSON(nil)
	}
	return x.manifest
}

// built is the estimator or policy Init made (nil before).
func (x *Instance) built() any {
	if x.est != nil {
		return x.est
	}
	if x.pol != nil {
		return x.pol
	}
	return nil
}

// Alloc returns a buffer of size bytes for the host to write a request or a
// config into. Following the ABI, the buffer stays the host's until the
// next Alloc; one growing buffer is kept.
func (x *Instance) Alloc(size int) []byte {
	if size < 0 {
		return nil
	}
	if cap(x.in) < size || cap(x.in) == 0 {
		n := size
		if n < 1024 {
			n = 1024
		}
		x.in = make([]byte, n)
	}
	x.in = x.in[:cap(x.in)]
	return x.in[:size]
}

// Input returns the buffer last returned by Alloc, full length; the wasm
// glue checks the host's pointer against it.
func (x *Instance) Input() []byte { return x.in }

// Init builds the estimator or policy from config. It returns nil on
// success or a result record carrying the error (CodeBadConfig unless the
// constructor returned an *Error with another code).
func (x *Instance) Init(config []byte) []byte {
	x.ready, x.est, x.pol, x.manifest = false, nil, nil, nil
	if x.p == nil {
		return x.fail(CodeInternal, noPlugin)
	}
	if len(config) == 0 {
		config = []byte("{}")
	}
	var err error
	switch {
	case x.p.newEstimator != nil:
		x.est, err = x.p.newEstimator(config)
		if err == nil && x.est == nil {
			err = Internal("constructor returned a nil Estimator")
		}
	case x.p.newPolicy != nil:
		x.pol, err = x.p.newPolicy(config)
		if err == nil && x.pol == nil {
			err = Internal("constructor returned a nil Policy")
		}
	}
	if err != nil {
		code, msg := codeOf(err, CodeBadConfig)
		return x.fail(code, x.p.manifest.Name+": "+msg)
	}
	x.ready = true
	return nil
}

const noPlugin = "no plugin registered: call purser.Register from an init function in package main"

func (x *Instance) fail(code Code, msg string) []byte {
	x.out = abi.AppendError(x.out[:0], code, msg)
	return x.out
}

// Call handles one request record arriving through export (abi.ExportEstimate
// or abi.ExportAdmit) and returns the result record.
func (x *Instance) Call(export string, record []byte) []byte {
	if x.p == nil {
		return x.fail(CodeInternal, noPlugin)
	}
	if !x.ready {
		return x.fail(CodeNotInitialized, x.p.manifest.Name+": called before a successful purser_init")
	}
	if err := x.req.reset(record); err != nil {
		return x.fail(CodeBadRequest, err.Error())
	}
	switch export {
	case abi.ExportEstimate:
		if x.est == nil {
			return x.fail(CodeUnsupported, x.p.manifest.Name+" is a policy, not an estimator")
		}
		if x.req.IsAdmit() {
			return x.fail(CodeBadRequest, "admission request sent to purser_estimate")
		}
		n, err := x.est.Estimate(&x.req)
		if err != nil {
			code, msg := codeOf(err, CodeInternal)
			return x.fail(code, msg)
		}
		if n < 0 {
			return x.fail(CodeInternal, x.p.manifest.Name+": negative estimate "+strconv.FormatInt(n, 10)+" nanos")
		}
		x.out = abi.AppendEstimate(x.out[:0], n)
	case abi.ExportAdmit:
		if x.pol == nil {
			return x.fail(CodeUnsupported, x.p.manifest.Name+" is an estimator, not a policy")
		}
		if !x.req.IsAdmit() {
			return x.fail(CodeBadRequest, "estimate request sent to purser_admit")
		}
		d, err := x.pol.Admit(&x.req)
		if err != nil {
			code, msg := codeOf(err, CodeInternal)
			return x.fail(code, msg)
		}
		if d.verdict > abi.Deny {
			return x.fail(CodeInternal, x.p.manifest.Name+": invalid verdict "+d.verdict.String())
		}
		x.out = d.appendTo(x.out[:0])
	default:
		return x.fail(CodeInternal, "unknown export "+strconv.Quote(export))
	}
	return x.out
}
