module github.com/purser-dev/purser/plugins

go 1.26.8

require (
	github.com/purser-dev/purser v0.0.0
	github.com/purser-dev/purser/sdk/go v0.0.0
	github.com/tetratelabs/wazero v1.12.0
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/fatih/color v1.13.0 // indirect
	github.com/fsnotify/fsnotify v1.10.1 // indirect
	github.com/hashicorp/go-hclog v1.6.3 // indirect
	github.com/mattn/go-colorable v0.1.12 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace (
	github.com/purser-dev/purser => ..
	github.com/purser-dev/purser/sdk/go => ../sdk/go
)
