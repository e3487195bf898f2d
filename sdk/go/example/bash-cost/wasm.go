//go:build wasip1

package main

import "github.com/purser-dev/purser/sdk/go/purser"

// Go's reactor mode runs init functions in _initialize and never calls main.
func init() { purser.Register(Plugin()) }

func main() {}
