//go:build unix

package watch

// FileLimitBudget is kqueue's Budget for this process's open file limit,
// on any unix, for the tests.
var FileLimitBudget = fileLimitBudget
