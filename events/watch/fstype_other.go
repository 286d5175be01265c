//go:build !linux && !darwin

package watch

// mountsOf knows nothing of file systems here: Auto watches with
// notifications. (On Windows, ReadDirectoryChangesW does see other
// machines' changes on an SMB share: the server sends them.)
func mountsOf(root string) ([]mount, error) { return nil, nil }
