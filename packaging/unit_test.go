package packaging

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitFile is a systemd unit: section → key → values in order (a key may
// repeat; an empty assignment is the value "").
type unitFile map[string]map[string][]string

// parseUnit reads a unit file: [Section] lines, Key=Value lines, comments
// (# or ;) and blank lines; it does not know line continuations, which the
// package's unit does not use.
func parseUnit(path string) (unitFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				return nil, &unitError{path, line}
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			u[section][k] = append(u[section][k], v)
		}
	}
	return u, sc.Err()
}

type unitError struct{ path, line string }

func (e *unitError) Error() string { return e.path + ": cannot read line " + e.line }

// one returns the single value of key in section ("" if absent).
func (u unitFile) one(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// The [Service] settings the emulation carries out (startUnit), and those
// only systemd enforces (the tests check they are there). A setting in
// neither list fails TestUnitFile: decide which it is.
var (
	emulated = []string{"Type", "User", "Group", "ExecStart", "LoadCredential", "StateDirectory",
		"StateDirectoryMode", "UMask", "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities"}
	systemdOnly = []string{"Restart", "RestartSec", "RestartPreventExitStatus", "TimeoutStopSec",
		"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
		"ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
		"ProtectProc", "ProcSubset", "RestrictAddressFamilies", "RestrictNamespaces", "RestrictRealtime",
		"RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC",
		"SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber"}
)

// TestUnitFile checks the hardening of packaging/saslcert.service and that
// the test's emulation knows every [Service] setting.
func TestUnitFile(t *testing.T) {
	u, err := parseUnit(filepath.Join("saslcert.service"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range u["Service"] {
		if !slices.Contains(emulated, k) && !slices.Contains(systemdOnly, k) {
			t.Errorf("[Service] %s: neither emulated by startUnit nor listed as systemd-only", k)
		}
	}
	want := []struct{ key, value string }{
		{"User", "saslcert"},
		{"Group", "saslcert"},
		{"ExecStart", "/usr/bin/saslcert serve --config /etc/saslcert/saslcert.toml"},
		// serve reads $CREDENTIALS_DIRECTORY/component.secret
		// (cmd/saslcert CredentialName).
		{"LoadCredential", "component.secret:/etc/saslcert/component.secret"},
		{"StateDirectory", "saslcert"},
		{"StateDirectoryMode", "0750"},
		{"UMask", "0077"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"},
		{"RestartPreventExitStatus", "2"},
	}
	for _, w := range want {
		vals, ok := u["Service"][w.key]
		switch {
		case !ok:
			t.Errorf("[Service] %s is missing, want %q", w.key, w.value)
		case len(vals) != 1 || vals[0] != w.value:
			t.Errorf("[Service] %s = %q, want %q once", w.key, vals, w.value)
		}
	}
	if _, ok := u["Service"]["SupplementaryGroups"]; ok {
		t.Error("the service must not join other groups (group prosody could read Prosody's keys)")
	}
	if got := u.one("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", got)
	}
}
