package enforcer

import (
	"context"
	"errors"
	"fmt"
)

// EstimatorError records why the chain fell back from a registered estimator.
type EstimatorError struct {
	Tool string
	Err  error
}

func (e *EstimatorError) Error() string {
	return fmt.Sprintf("estimator for tool %q failed, fell back: %v", e.Tool, e.Err)
}

func (e *EstimatorError) Unwrap() error { return e.Err }

// estimationChain picks the best available estimate for a call: the
// estimator registered for the tool, else the built-in table (or the LLM
// rule), else the unknown-tool rule.
type estimationChain struct {
	estimators map[string]Estimator // by tool; "*" matches any tool
	table      CostTable
	llm        LLMRule
	unknown    UnknownRule
	unknownEst Nanos
	calib      *calibrator
}

func newEstimationChain(cfg Config) (*estimationChain, error) {
	if err := cfg.LLM.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Calibration.validate(); err != nil {
		return nil, err
	}
	if err := cfg.Unknown.validate(); err != nil {
		return nil, err
	}
	u, _ := cfg.Unknown.Estimate()
	est := make(map[string]Estimator, len(cfg.Estimators))
	for tool, e := range cfg.Estimators {
		if e == nil {
			return nil, fmt.Errorf("estimator for tool %q is nil", tool)
		}
		est[tool] = e
	}
	return &estimationChain{estimators: est, table: cfg.Table, llm: cfg.LLM, unknown: cfg.Unknown, unknownEst: u,
		calib: newCalibrator(cfg.Calibration, cfg.Clock, cfg.CalibrationStore)}, nil
}

func (c *estimationChain) estimatorFor(tool string) Estimator {
	if e, ok := c.estimators[tool]; ok {
		return e
	}
	return c.estimators["*"]
}

// estimate fails only for an unknown tool in strict mode
// (ErrStrictUnknownTool), a cancelled context, or params the estimator
// refused (ErrInvalidParams, usually an *InvalidParamsError): the caller's
// mistake is returned, never answered with a fallback price that would
// hide it (the estimate then carries the refusing source).
func (c *estimationChain) estimate(ctx context.Context, call Call) (Estimate, error) {
	var fallback error
	var llm *llmPlan
	if c.llm.IsLLMTool(call.Tool) {
		llm = c.planLLM(call)
		if llm.explain.Model != "" {
			// A call naming no model has no price to hand over: estimators
			// apply the seed's rule themselves.
			call.LLM = &llm.ctx
		}
	}
	if e := c.estimatorFor(call.Tool); e != nil {
		q, err := e.Estimate(ctx, call)
		if err == nil && q.Nanos < 0 {
			err = fmt.Errorf("negative estimate %d nano-USD", q.Nanos)
		}
		if err == nil {
			return Estimate{Nanos: q.Nanos, Source: q.Source, Fuel: q.Fuel}, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return Estimate{}, err
		}
		if errors.Is(err, ErrInvalidParams) {
			return Estimate{Source: q.Source, Fuel: q.Fuel}, err
		}
		if !errors.Is(err, ErrNotHandled) {
			fallback = &EstimatorError{Tool: call.Tool, Err: err}
		}
	}
	out, err := c.builtin(call, llm)
	out.FallbackErr = fallback
	return out, err
}

func (c *estimationChain) builtin(call Call, llm *llmPlan) (Estimate, error) {
	if llm != nil {
		return c.llmEstimate(llm)
	}
	if n, ok := c.table[call.Tool]; ok {
		return Estimate{Nanos: n, Source: SourceTable}, nil
	}
	if c.unknown.Strict {
		return Estimate{Source: SourceUnknown}, fmt.Errorf("tool %q: %w", call.Tool, ErrStrictUnknownTool)
	}
	return Estimate{Nanos: c.unknownEst, Source: SourceUnknown}, nil
}
