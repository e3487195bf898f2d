package main

import (
	"os"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
)

// The README and BENCHMARKS.md run everything through the Taskfile: it must
// parse as YAML, and every command must be a string (an unquoted "{{" in a
// flow list is a YAML mapping, so go-task would refuse the file).
func TestTaskfileParsesAndEveryCommandIsAString(t *testing.T) {
	raw, err := os.ReadFile("../../Taskfile.yml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Parser().Unmarshal(raw)
	if err != nil {
		t.Fatalf("Taskfile.yml is not valid YAML: %v", err)
	}
	tasks, ok := doc["tasks"].(map[string]any)
	if !ok || len(tasks) == 0 {
		t.Fatalf("Taskfile.yml has no tasks: %v", doc["tasks"])
	}
	for name, v := range tasks {
		task, _ := v.(map[string]any)
		cmds, _ := task["cmds"].([]any)
		for i, c := range cmds {
			switch c := c.(type) {
			case string:
			case map[string]any:
				if c["task"] == nil && c["cmd"] == nil {
					t.Errorf("task %s: cmds[%d] is a mapping without task or cmd: %v (quote a command holding {{...}})", name, i, c)
				}
			default:
				t.Errorf("task %s: cmds[%d] is %T, want a string", name, i, c)
			}
		}
	}
}
