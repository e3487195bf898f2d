module github.com/purser-dev/purser

go 1.26.8
