//go:build wasip1

package main

import "github.com/purser-dev/purser/sdk/go/purser"

// Go's reactor mode (-buildmode=c-shared) runs package initialisers in
// _initialize and never calls main: registering here is the only way in.
func init() { purser.Register(Plugin()) }

func main() {}
