//go:build !unix

package workspace

// nonBlock is not needed where the file system holds no fifos.
const nonBlock = 0
