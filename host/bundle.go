package host

import "context"

// SetPlugins replaces the registry's explicit entries (a new plugin
// bundle) and reloads: files still listed keep or reload their slot,
// new ones load, the others are unloaded. The folders watched with
// RegistryConfig.Watch stay those given at NewRegistry.
func (r *Registry) SetPlugins(ctx context.Context, specs []Spec) error {
	r.reloadMu.Lock()
	r.cfg.Plugins = append([]Spec(nil), specs...)
	r.reloadMu.Unlock()
	return r.Reload(ctx)
}
