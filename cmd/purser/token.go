package main

import (
	"context"
	"fmt"
	"io"

	"github.com/purser-dev/purser/server"
)

func runToken(_ context.Context, args []string, out io.Writer) error {
	if len(args) != 2 || args[0] != "hash" {
		return usagef("usage: purser token hash TOKEN   (prints the sha256 to put in auth.tokens[].sha256)")
	}
	fmt.Fprintln(out, server.HashToken(args[1]))
	return nil
}
