package enforcer

// learn feeds a settled reservation to calibration (placeholder until
// calibration lands).
func (e *Enforcer) learn(Reservation) {}
