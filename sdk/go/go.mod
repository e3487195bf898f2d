module github.com/purser-dev/purser/sdk/go

go 1.26.8

require github.com/purser-dev/purser v0.0.0

replace github.com/purser-dev/purser => ../..
