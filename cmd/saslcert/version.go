package main

import "runtime/debug"

// version is what `saslcert --version` prints. Release builds set it with
// -ldflags "-X main.version=..." (scripts/package.sh takes git describe);
// otherwise it is the module version Go recorded, or "devel".
var version string

// appVersion returns version, or the build's module version, or "devel".
func appVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
