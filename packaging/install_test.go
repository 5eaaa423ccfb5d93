package packaging

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// RequireEnv: when set, a missing tool or root fails the package tests
// instead of skipping them.
const RequireEnv = "SASLCERT_REQUIRE_PACKAGE"

// pkgName is the package the tests install and purge.
const pkgName = "saslcert"

// requirePackageTest skips (or with RequireEnv fails) unless the test can
// install packages here: root, dpkg, setpriv, Prosody, and no saslcert
// package installed already (the test would replace and purge it).
func requirePackageTest(t *testing.T) {
	t.Helper()
	skip := func(format string, a ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, a...)
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s and %s is set", msg, RequireEnv)
		}
		t.Skipf("%s; set %s to make this a failure", msg, RequireEnv)
	}
	if os.Geteuid() != 0 {
		skip("not root: cannot install packages")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "setpriv", "runuser", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed", tool)
		}
	}
	if !prosodytest.Installed() {
		skip("prosody is not installed")
	}
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkgName).Output()
	if strings.HasSuffix(string(out), " installed") {
		t.Fatalf("the %s package is installed on this machine (%s): the test would replace and purge it", pkgName, out)
	}
}

// dist is the package built by `make package` in this test binary (both
// tests use it; TestIntegrationManualSetup builds it as the README says).
var dist struct {
	sync.Mutex
	deb string
}

// findDeb returns the one dist/saslcert_*.deb of the repository.
func findDeb(t *testing.T) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(prosodytest.RepoRoot(), "dist", pkgName+"_*.deb"))
	if err != nil || len(m) != 1 {
		t.Fatalf("want one dist/%s_*.deb, found %q (%v)", pkgName, m, err)
	}
	return m[0]
}

// buildDeb runs `make package` once per test binary and returns the package.
func buildDeb(t *testing.T) string {
	t.Helper()
	dist.Lock()
	defer dist.Unlock()
	if dist.deb == "" {
		start := time.Now()
		cmd := exec.Command("make", "package")
		cmd.Dir = prosodytest.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make package: %v\n%s", err, out)
		}
		dist.deb = findDeb(t)
		t.Logf("make package: %s in %v", filepath.Base(dist.deb), time.Since(start).Round(time.Millisecond))
	}
	return dist.deb
}

// cleanupInstall registers a cleanup that purges the package and, if the
// system user saslcert did not exist before, removes it and its group, so
// that the machine is left as it was found.
func cleanupInstall(t *testing.T) {
	t.Helper()
	_, err := user.Lookup(pkgName)
	userExisted := err == nil
	_, err = user.LookupGroup(pkgName)
	groupExisted := err == nil
	t.Cleanup(func() {
		if out, err := dpkg("--purge", pkgName); err != nil {
			t.Errorf("dpkg --purge %s: %v\n%s", pkgName, err, out)
		}
		if !userExisted {
			if _, err := user.Lookup(pkgName); err == nil {
				if out, err := exec.Command("deluser", "--system", "--quiet", pkgName).CombinedOutput(); err != nil {
					t.Errorf("deluser: %v\n%s", err, out)
				}
			}
		}
		if !groupExisted {
			if _, err := user.LookupGroup(pkgName); err == nil {
				if out, err := exec.Command("delgroup", "--system", "--quiet", pkgName).CombinedOutput(); err != nil {
					t.Errorf("delgroup: %v\n%s", err, out)
				}
			}
		}
		for _, p := range []string{"/etc/saslcert", "/var/lib/saslcert", "/usr/bin/saslcert", "/usr/share/saslcert", "/usr/lib/saslcert"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s is left after dpkg --purge", p)
			}
		}
	})
}

// dpkg runs dpkg with args, waiting for the dpkg lock if another install
// holds it.
func dpkg(args ...string) ([]byte, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "lock") || time.Now().After(deadline) {
			return out, err
		}
		time.Sleep(time.Second)
	}
}

// includeServer starts the stack's Prosody with conf (what `saslcert
// prosody config` printed: the package's plugin directory and secret file)
// included, listening for the component on addr.
func includeServer(conf, addr string) stacktest.StartServerFunc {
	return func(tb testing.TB, o stacktest.ServerOptions) stacktest.Server {
		return stacktest.ProsodyServer(prosodytest.Start(tb, prosodytest.Options{
			Domain:        o.Domain,
			ComponentJID:  "certs." + o.Domain,
			Include:       conf,
			ComponentAddr: addr,
		}))
	}
}

// systemdRunning reports whether systemd is this machine's init.
func systemdRunning() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// startUnit starts the installed saslcert.service against st's Prosody:
// with systemctl where systemd runs, otherwise by running its ExecStart as
// systemd would (emulated settings: see unit_test.go), and waits until the
// component is connected.
func startUnit(t *testing.T, st *stacktest.Stack) {
	t.Helper()
	u, err := parseUnit("/lib/systemd/system/saslcert.service")
	if err != nil {
		t.Fatal(err)
	}
	if systemdRunning() {
		startWithSystemd(t)
		return
	}
	argv := emulateUnit(t, u)
	t.Logf("no systemd: running the unit's ExecStart as %q", argv)
	st.StartExec(t, argv)
}

// startWithSystemd starts the unit with systemctl and waits for its log to
// say it connected.
func startWithSystemd(t *testing.T) {
	t.Helper()
	since := time.Now().Format("2006-01-02 15:04:05")
	for _, args := range [][]string{{"daemon-reload"}, {"restart", "saslcert.service"}} {
		if out, err := exec.Command("systemctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("systemctl %s: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command("systemctl", "stop", "saslcert.service").Run() })
	deadline := time.Now().Add(stacktest.ConnectTimeout)
	for {
		out, _ := exec.Command("journalctl", "-u", "saslcert.service", "--since", since, "--no-pager").CombinedOutput()
		if strings.Contains(string(out), `msg="connected to the server"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("saslcert.service did not connect within %v:\n%s", stacktest.ConnectTimeout, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// emulateUnit prepares what systemd would (the state directory, the
// credentials directory) and returns the command that runs ExecStart as
// the unit says: umask, a clean environment with CREDENTIALS_DIRECTORY and
// STATE_DIRECTORY, setpriv for User, Group (no supplementary groups),
// NoNewPrivileges and the empty capability sets.
func emulateUnit(t *testing.T, u unitFile) []string {
	t.Helper()
	svc := func(k string) string { return u.one("Service", k) }
	usr, err := user.Lookup(svc("User"))
	if err != nil {
		t.Fatalf("User=%s: %v", svc("User"), err)
	}
	grp, err := user.LookupGroup(svc("Group"))
	if err != nil {
		t.Fatalf("Group=%s: %v", svc("Group"), err)
	}
	uid, _ := strconv.Atoi(usr.Uid)
	gid, _ := strconv.Atoi(grp.Gid)

	// StateDirectory=: /var/lib/<name>, owned by the user, with its mode.
	mode, err := strconv.ParseUint(svc("StateDirectoryMode"), 8, 32)
	if err != nil {
		t.Fatalf("StateDirectoryMode=%q: %v", svc("StateDirectoryMode"), err)
	}
	state := filepath.Join("/var/lib", svc("StateDirectory"))
	if err := os.MkdirAll(state, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}

	// LoadCredential=NAME:PATH: read by root, handed over in a directory
	// of the user's (0500, files 0400).
	creds, err := os.MkdirTemp("", "saslcert-credentials-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(creds) })
	for _, lc := range u["Service"]["LoadCredential"] {
		name, path, ok := strings.Cut(lc, ":")
		if !ok || strings.Contains(name, "/") {
			t.Fatalf("LoadCredential=%s: want NAME:PATH", lc)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("LoadCredential=%s: %v", lc, err)
		}
		f := filepath.Join(creds, name)
		if err := os.WriteFile(f, data, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(creds, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(creds, 0o500); err != nil {
		t.Fatal(err)
	}

	exe := svc("ExecStart")
	if strings.ContainsAny(exe, `%$"'\`) || !strings.HasPrefix(exe, "/") {
		t.Fatalf("ExecStart=%s: the emulation runs plain absolute commands only", exe)
	}
	argv := []string{"/bin/sh", "-c", `umask "$0" && exec "$@"`, svc("UMask"),
		"/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"CREDENTIALS_DIRECTORY=" + creds, "STATE_DIRECTORY=" + state,
		"/usr/bin/setpriv", "--reuid=" + usr.Uid, "--regid=" + grp.Gid, "--clear-groups", "--pdeathsig=SIGKILL"}
	if svc("NoNewPrivileges") == "yes" {
		argv = append(argv, "--no-new-privs")
	}
	if caps, ok := u["Service"]["CapabilityBoundingSet"]; ok && caps[len(caps)-1] == "" {
		argv = append(argv, "--bounding-set=-all", "--inh-caps=-all")
	}
	return append(append(argv, "--"), strings.Fields(exe)...)
}

// uploadAndLogin is the user's side: alice logs in with her password,
// uploads a certificate with XEP-0257, then logs in with it (SASL EXTERNAL)
// as alice; a certificate she never uploaded is refused.
func uploadAndLogin(t *testing.T, st *stacktest.Stack) {
	t.Helper()
	alice := st.Register(t, "alice")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{alice.String()}})
	c, err := st.LoginPassword(ctx, "alice")
	if err != nil {
		t.Fatalf("password login: %v", err)
	}
	defer c.Close()
	if err := xep0257.AppendCert(ctx, c.Session, jid.JID{}, "laptop", cert.DER, false); err != nil {
		t.Fatalf("XEP-0257 upload: %v", err)
	}
	ext, err := st.LoginCert(ctx, "alice", cert, "")
	if err != nil {
		t.Fatalf("SASL EXTERNAL login with the uploaded certificate: %v", err)
	}
	if got := ext.LocalAddr().Bare(); !got.Equal(alice) {
		t.Errorf("EXTERNAL login bound %s, want %s", got, alice)
	}
	ext.Close()
	stranger := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{alice.String()}})
	if s, err := st.LoginCert(ctx, "alice", stranger, ""); err == nil {
		s.Close()
		t.Fatal("EXTERNAL login with a certificate never uploaded succeeded")
	}
}
