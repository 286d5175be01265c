package diff

// SetCaps lowers the work caps of the comparison for a test and returns
// a function that puts them back. Tests that call it must not run in
// parallel with others of the package.
func SetCaps(work, cost int) (restore func()) {
	w, c := maxWork, maxCost
	maxWork, maxCost = work, cost
	return func() { maxWork, maxCost = w, c }
}
