package main

import (
	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/purser"
)

func newRequest(c abi.Call) (*purser.Request, error) {
	return purser.NewRequest(abi.AppendEstimateRequest(nil, &abi.EstimateRequest{Call: c}))
}
