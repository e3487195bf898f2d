package main

import (
	"github.com/purser-dev/purser/abi"
	"github.com/purser-dev/purser/sdk/go/purser"
)

func newAdmitRequest(c abi.Call) (*purser.Request, error) {
	return purser.NewRequest(abi.AppendAdmitRequest(nil, &abi.AdmitRequest{Call: c, EstimateNanos: 1}))
}
