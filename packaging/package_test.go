package packaging

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// TestIntegrationPackage installs the .deb with dpkg, checks what it put
// where (files, modes, owners, the user and who can read the secret),
// checks the commented config file, then starts the unit against a test
// Prosody that loads the installed plugin and secret, uploads a
// certificate and logs in with SASL EXTERNAL. It purges the package at the
// end.
func TestIntegrationPackage(t *testing.T) {
	requirePackageTest(t)
	deb := buildDeb(t)
	cleanupInstall(t)
	if out, err := dpkg("-i", deb); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}

	t.Run("files", func(t *testing.T) {
		root := prosodytest.RepoRoot()
		same := map[string]string{
			"/lib/systemd/system/saslcert.service": filepath.Join(root, "packaging", "saslcert.service"),
			"/etc/saslcert/saslcert.toml":          filepath.Join(root, "packaging", "saslcert.toml"),
		}
		lua, _ := filepath.Glob(filepath.Join(root, "plugins", "prosody", "*.lua"))
		for _, f := range lua {
			same["/usr/share/saslcert/prosody/"+filepath.Base(f)] = f
		}
		if len(lua) < 2 {
			t.Fatalf("plugin files: %q", lua)
		}
		for installed, src := range same {
			a, err := os.ReadFile(installed)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			b, _ := os.ReadFile(src)
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs from %s", installed, src)
			}
		}
		checkFile(t, "/usr/bin/saslcert", 0o755, "root", "root")
		checkFile(t, "/etc/saslcert/component.secret", 0o640, "root", "prosody")
		checkFile(t, "/var/lib/saslcert", 0o750|os.ModeDir, "saslcert", "saslcert")
		// systemd knows every setting of the unit (it runs offline).
		if sa, err := exec.LookPath("systemd-analyze"); err == nil {
			out, err := exec.Command(sa, "verify", "/lib/systemd/system/saslcert.service").CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s", err, out)
			}
		}
		out, err := exec.Command("/usr/bin/saslcert", "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "saslcert version ") || strings.Contains(string(out), "devel") {
			t.Errorf("saslcert --version: %v %q", err, out)
		}
	})

	t.Run("ejabberd-module", func(t *testing.T) {
		// The shipped module is what scripts/build-ejabberd-module.sh makes,
		// and ejabberd loads it from a contributed modules directory that
		// links to it, as plugins/ejabberd/README.md tells admins to.
		ejabberdtest.Skip(t)
		for _, f := range []string{"ebin/mod_saslcert.beam", "ebin/mod_saslcert_link.beam", "ebin/mod_saslcert_cache.beam",
			"ebin/mod_saslcert_prefetch.beam", "ebin/mod_saslcert_limit.beam", "ebin/mod_saslcert_sessions.beam",
			"ebin/mod_saslcert_requests.beam", "ebin/mod_saslcert_forward.beam", "ebin/mod_saslcert_events.beam",
			"ebin/mod_saslcert_proto.beam", "mod_saslcert.spec"} {
			checkFile(t, "/usr/lib/saslcert/ejabberd/mod_saslcert/"+f, 0o644, "root", "root")
		}
		contrib := t.TempDir()
		if err := os.Symlink("/usr/lib/saslcert/ejabberd/mod_saslcert", filepath.Join(contrib, "mod_saslcert")); err != nil {
			t.Fatal(err)
		}
		s := ejabberdtest.Start(t, ejabberdtest.Options{ModulesDir: contrib})
		out, err := s.Ctl("modules_installed")
		if err != nil || !strings.Contains(out, "mod_saslcert") {
			t.Errorf("ejabberdctl modules_installed: %v %q", err, out)
		}
	})

	t.Run("user", func(t *testing.T) {
		u, err := user.Lookup("saslcert")
		if err != nil {
			t.Fatal(err)
		}
		gids, err := u.GroupIds()
		if err != nil {
			t.Fatal(err)
		}
		g, _ := user.LookupGroup("saslcert")
		if len(gids) != 1 || g == nil || gids[0] != g.Gid {
			t.Errorf("user saslcert is in groups %v, want only saslcert", gids)
		}
		// Prosody reads the secret when it starts; the service gets it as
		// a credential and can read neither it nor Prosody's files.
		for _, c := range []struct {
			user, file string
			ok         bool
		}{
			{"prosody", "/etc/saslcert/component.secret", true},
			{"saslcert", "/etc/saslcert/component.secret", false},
			{"saslcert", "/etc/saslcert/saslcert.toml", true},
			{"saslcert", "/etc/prosody/certs/.", false},
		} {
			err := exec.Command("runuser", "-u", c.user, "--", "test", "-r", c.file).Run()
			if (err == nil) != c.ok {
				t.Errorf("user %s can read %s: %v, want %v", c.user, c.file, err == nil, c.ok)
			}
		}
	})

	t.Run("commented-config", func(t *testing.T) {
		// Every "# key = value" line of the shipped file, uncommented, is
		// a setting serve accepts.
		b, err := os.ReadFile("/etc/saslcert/saslcert.toml")
		if err != nil {
			t.Fatal(err)
		}
		setting := regexp.MustCompile(`(?m)^# ([a-z][a-z0-9-]*) = (.+)$`)
		var toml strings.Builder
		n := 0
		for _, m := range setting.FindAllStringSubmatch(string(b), -1) {
			if m[1] == "ca" || m[1] == "secret-file" || m[1] == "data-dir" {
				continue // needs a CA / a file / root's directory: set below
			}
			toml.WriteString(m[1] + " = " + m[2] + "\n")
			n++
		}
		if n < 15 {
			t.Fatalf("only %d commented settings found:\n%s", n, b)
		}
		dir := t.TempDir()
		f := filepath.Join(dir, "all.toml")
		if err := os.WriteFile(f, []byte(toml.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/usr/bin/saslcert", "serve", "--check", "--config", f, "--data-dir", filepath.Join(dir, "data"))
		cmd.Env = append(os.Environ(), "SASLCERT_SECRET=not-the-real-one")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("serve --check with every commented setting: %v\n%s\n%s", err, out, toml.String())
		}
	})

	t.Run("unconfigured-unit-refuses", func(t *testing.T) {
		// Started before saslcert.toml names the component, the service
		// exits with the usage status, which the unit does not restart.
		u, err := parseUnit("/lib/systemd/system/saslcert.service")
		if err != nil {
			t.Fatal(err)
		}
		argv := emulateUnit(t, u)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--component (SASLCERT_COMPONENT) is required") {
			t.Fatalf("unconfigured service: %v (want exit status 2)\n%s", err, out)
		}
		if got := u.one("Service", "RestartPreventExitStatus"); got != "2" {
			t.Errorf("RestartPreventExitStatus=%s", got)
		}
	})

	t.Run("unit", func(t *testing.T) {
		// The admin's steps, with a free component port.
		addr := prosodytest.FreeAddr(t)
		appendFile(t, "/etc/saslcert/saslcert.toml",
			"component = \"certs.example.org\"\ndomain = [\"example.org\"]\nserver-addr = \""+addr+"\"\n")
		conf := filepath.Join(t.TempDir(), "saslcert.cfg.lua")
		out, err := exec.Command("/usr/bin/saslcert", "prosody", "config", "--config", "/etc/saslcert/saslcert.toml").Output()
		if err != nil {
			t.Fatalf("saslcert prosody config: %v", err)
		}
		if err := os.WriteFile(conf, out, 0o644); err != nil {
			t.Fatal(err)
		}
		st := stacktest.Start(t, stacktest.Options{NoComponent: true, StartServer: includeServer(conf, addr)})
		startUnit(t, st)
		uploadAndLogin(t, st)
		// The admin commands, run as the service user, see the upload.
		list, err := exec.Command("runuser", "-u", "saslcert", "--", "/usr/bin/saslcert", "cert", "list", "--jid", "alice@example.org").CombinedOutput()
		if err != nil || !strings.Contains(string(list), "laptop") {
			t.Errorf("saslcert cert list as user saslcert: %v\n%s", err, list)
		}
		checkFile(t, "/var/lib/saslcert/saslcert.db", 0o600, "saslcert", "saslcert")
	})

	t.Run("reinstall-keeps-settings", func(t *testing.T) {
		secret, err := os.ReadFile("/etc/saslcert/component.secret")
		if err != nil {
			t.Fatal(err)
		}
		// An admin made the secret readable by everyone: the reinstall
		// takes that away (the service's private copy would hide it).
		if err := os.Chmod("/etc/saslcert/component.secret", 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := dpkg("-i", deb); err != nil {
			t.Fatalf("dpkg -i again: %v\n%s", err, out)
		}
		again, err := os.ReadFile("/etc/saslcert/component.secret")
		if err != nil || !bytes.Equal(again, secret) {
			t.Errorf("the secret changed on reinstall (%v)", err)
		}
		checkFile(t, "/etc/saslcert/component.secret", 0o640, "root", "prosody")
		toml, _ := os.ReadFile("/etc/saslcert/saslcert.toml")
		if !strings.Contains(string(toml), `component = "certs.example.org"`) {
			t.Errorf("the admin's saslcert.toml was replaced on reinstall:\n%s", toml)
		}
		checkFile(t, "/var/lib/saslcert/saslcert.db", 0o600, "saslcert", "saslcert")
	})
}

// checkFile fails t unless path has mode (permission and type bits) and
// owner and group.
func checkFile(t *testing.T, path string, mode os.FileMode, owner, group string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if got := fi.Mode() & (os.ModePerm | os.ModeDir); got != mode {
		t.Errorf("%s: mode %v, want %v", path, got, mode)
	}
	st := fi.Sys().(*syscall.Stat_t)
	u, _ := user.LookupId(itoa(st.Uid))
	g, _ := user.LookupGroupId(itoa(st.Gid))
	if u == nil || g == nil || u.Username != owner || g.Name != group {
		t.Errorf("%s: owned by %d:%d, want %s:%s", path, st.Uid, st.Gid, owner, group)
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// appendFile appends text to path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
