package purser

// registered is the plugin's single instance. It is the one package-level
// variable of the SDK and exists only for the wasm export glue: exports are
// plain functions without receivers, so the state they share with the
// plugin (its buffers, which the host writes into between calls, and the
// estimator or policy built at purser_init) must be reachable from a
// package variable. Register sets it once, from package main's init.
var registered *Instance

// Register installs p as this module's plugin. Call it exactly once, from an
// init function of package main in a file built for wasip1 (Go's reactor
// mode runs package initialisers in _initialize and never calls main). It
// panics on an invalid manifest or a second registration: such a module
// must not load, and the panic message reaches the host's log.
func Register(p *Plugin) {
	if registered != nil {
		panic("purser: Register called twice (" + registered.p.manifest.Name + ", then " + p.manifest.Name + ")")
	}
	if err := p.Validate(); err != nil {
		panic(err.Error())
	}
	registered = NewInstance(p)
}
