module github.com/purser-dev/purser/plugins

go 1.26.8

require (
	github.com/purser-dev/purser v0.0.0
	github.com/purser-dev/purser/sdk/go v0.0.0
	github.com/tetratelabs/wazero v1.12.0
	gopkg.in/yaml.v3 v3.0.1
)

require golang.org/x/sys v0.49.0 // indirect

replace (
	github.com/purser-dev/purser => ..
	github.com/purser-dev/purser/sdk/go => ../sdk/go
)
