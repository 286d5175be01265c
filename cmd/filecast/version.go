package main

import (
	"os"
	"runtime/debug"
)

var osGetenv = os.Getenv

// version is the module version of the binary, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
