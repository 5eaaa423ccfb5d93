package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/saslcert/saslcert/internal/prosodyconf"
	"github.com/saslcert/saslcert/modclientcerts"
)

// scramAccount is the content of an accounts/<user>.dat file of
// mod_auth_internal_hashed (SCRAM-SHA-1) for password, the same for every
// user (a random salt per run).
func scramAccount(password string) (string, error) {
	saltBytes := make([]byte, 12)
	if _, err := rand.Read(saltBytes); err != nil {
		return "", err
	}
	salt := hex.EncodeToString(saltBytes)
	const iterations = 4096 // RFC 5802's minimum; setup logins stay cheap
	salted, err := pbkdf2.Key(sha1.New, password, []byte(salt), iterations, sha1.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha1.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha1.Sum(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	return fmt.Sprintf("return {\n\t[\"iteration_count\"] = %d;\n\t[\"salt\"] = %q;\n\t[\"server_key\"] = %q;\n\t[\"stored_key\"] = %q;\n};\n",
		iterations, salt, hex.EncodeToString(server), hex.EncodeToString(stored[:])), nil
}

// writeAccounts creates accounts/<user>.dat for users on the host's data
// directory (before Prosody starts: it reads them on demand).
func writeAccounts(dataDir, domain, record string, users []string) error {
	dir := filepath.Join(dataDir, modclientcerts.PathEncode(domain), "accounts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, u := range users {
		if err := os.WriteFile(filepath.Join(dir, modclientcerts.PathEncode(u)+".dat"), []byte(record), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// writePeerFiller gives the peer n filler accounts (fill<k>) with one
// certificate each, in mod_client_certs's own flat-file format
// (client_certs/<user>.dat: a table by name with pem, x509cert, digest). The
// certificates are random bytes: no login presents them, they only make the
// store as big as ours at scale.
func writePeerFiller(dataDir, domain, record string, n int, progress func(done int)) error {
	acc := filepath.Join(dataDir, modclientcerts.PathEncode(domain), "accounts")
	certs := filepath.Join(dataDir, modclientcerts.PathEncode(domain), "client_certs")
	for _, d := range []string{acc, certs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	der := make([]byte, fillerDERSize)
	var b strings.Builder
	for k := range n {
		if _, err := rand.Read(der); err != nil {
			return err
		}
		user := fmt.Sprintf("fill%07d", k)
		b64 := base64.StdEncoding.EncodeToString(der)
		sum := sha1.Sum(der)
		b.Reset()
		b.WriteString("return {\n\t[\"c0\"] = {\n\t\t[\"digest\"] = \"")
		b.WriteString(hex.EncodeToString(sum[:])) // as LuaSec's cert:digest("sha1")
		b.WriteString("\";\n\t\t[\"name\"] = \"c0\";\n\t\t[\"no_cert_management\"] = false;\n\t\t[\"pem\"] = \"-----BEGIN CERTIFICATE-----\\n")
		for i := 0; i < len(b64); i += 64 {
			b.WriteString(b64[i:min(i+64, len(b64))])
			b.WriteString("\\n")
		}
		b.WriteString("-----END CERTIFICATE-----\\n\";\n\t\t[\"x509cert\"] = \"")
		b.WriteString(b64)
		b.WriteString("\";\n\t};\n};\n")
		if err := os.WriteFile(filepath.Join(certs, user+".dat"), []byte(b.String()), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(acc, user+".dat"), []byte(record), 0o600); err != nil {
			return err
		}
		if progress != nil && (k+1)%100000 == 0 {
			progress(k + 1)
		}
	}
	return nil
}

// freePort returns a loopback TCP port that is free right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, p, err := net.SplitHostPort(l.Addr().String())
	return p, err
}

// prosodyConfig is the part of the configuration both servers share:
// prosodyconf's global section (the listeners, TLS settings, nagle off,
// client certificates requested, one server key, the same as the tests'
// Prosody), the modules and the log level, and with -profile the Lua
// profiler. extra is appended (the VirtualHost and what each side needs,
// plugin_paths included).
func (b *bench) prosodyConfig(in *instance, extra string) string {
	g := prosodyconf.Global{
		Generator:     "internal/cmd/benche2e for " + in.name,
		Dir:           in.dir,
		CertDir:       b.work,
		CertFile:      b.serverCertFile,
		KeyFile:       b.serverKeyFile,
		LogLevel:      b.cfg.prosodyLog,
		LogFile:       filepath.Join(in.dir, "prosody.log"),
		C2SPort:       in.c2sPort,
		ComponentPort: in.compPort,
	}
	if b.prof != nil {
		g.Modules = []string{"benche2e_profile"}
		g.Extra = fmt.Sprintf("benche2e_profile_file = %s\nbenche2e_profile_every = %d",
			strconv.Quote(filepath.Join(b.prof.dir, in.name+".lua.tsv")), profileEvery)
	}
	return g.Render() + extra
}

// startProsody writes the instance's configuration and data files, starts
// Prosody and waits until its c2s port answers a stream header. A port
// taken in the meantime gets new ports, twice.
func (b *bench) startProsody(ctx context.Context, in *instance, extra func() (string, error)) error {
	for attempt := 1; ; attempt++ {
		var err error
		if in.c2sPort, err = freePort(); err != nil {
			return err
		}
		if in.compPort, err = freePort(); err != nil {
			return err
		}
		if in.c2sPort == in.compPort {
			continue
		}
		ex, err := extra()
		if err != nil {
			return err
		}
		cfgFile := filepath.Join(in.dir, "prosody.cfg.lua")
		if err := os.WriteFile(cfgFile, []byte(b.prosodyConfig(in, ex)), 0o600); err != nil {
			return err
		}
		logFile := filepath.Join(in.dir, "prosody.log")
		p, err := startProc("prosody-"+in.name, in.dir, filepath.Join(in.dir, "prosody.out"),
			[]string{"HOME=" + in.dir}, false, b.cfg.prosody, "-F", "--config", cfgFile)
		if err != nil {
			return err
		}
		in.prosody = p
		in.c2s = "127.0.0.1:" + in.c2sPort
		err = waitC2S(ctx, p, in.c2s, b.domain)
		if err == nil {
			return nil
		}
		p.stop()
		log := tailFile(logFile, 4<<10) + tailFile(p.outFile, 2<<10)
		if attempt < 3 && strings.Contains(log, "Failed to open server port") {
			continue
		}
		return fmt.Errorf("prosody for %s: %w\n%s", in.name, err, log)
	}
}

// waitC2S waits until addr answers a stream header with features.
func waitC2S(ctx context.Context, p *proc, addr, domain string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if p.exited() {
			return errors.New("prosody exited during start-up")
		}
		if err := probeC2S(addr, domain); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("no XMPP service on %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func probeC2S(addr, domain string) error {
	raw, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(2 * time.Second))
	c := &xconn{raw: raw, conn: raw, br: bufio.NewReaderSize(raw, 512)}
	f, err := c.openStream(domain)
	if err != nil {
		return err
	}
	if f.child(nsTLS, "starttls") == nil {
		return errors.New("no STARTTLS offered")
	}
	c.close()
	return nil
}

// oursExtra is the configuration of our side: exactly what
// `saslcert prosody config` prints for this domain, component and port.
func (b *bench) oursExtra(in *instance) (string, error) {
	out, err := exec.Command(b.cfg.saslcert, "prosody", "config",
		"--domain", b.domain, "--component", b.component,
		"--secret-file", in.secretFile, "--plugin-dir", b.cfg.pluginDir,
		"--component-interface", "127.0.0.1", "--component-port", in.compPort).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("saslcert prosody config: %w", err)
	}
	s := string(out)
	// Every benchmark login comes from 127.0.0.1: lift the per-address
	// lookup limit (the printed default) as a site behind one NAT would.
	for _, opt := range []string{"saslcert_lookup_burst", "saslcert_lookup_rate"} {
		re := regexp.MustCompile(`(?m)^(\t` + opt + ` = )\d+$`)
		if len(re.FindAllString(s, -1)) != 1 {
			return "", fmt.Errorf("saslcert prosody config: no line %s to raise", opt)
		}
		s = re.ReplaceAllString(s, "${1}100000")
	}
	if b.prof != nil {
		line := "plugin_paths = { " + strconv.Quote(b.cfg.pluginDir) + " }"
		if strings.Count(s, line) != 1 {
			return "", fmt.Errorf("saslcert prosody config: no line %s to add the profiler's directory to", line)
		}
		s = strings.Replace(s, line, "plugin_paths = { "+strconv.Quote(b.cfg.pluginDir)+", "+strconv.Quote(b.profPluginDir)+" }", 1)
	}
	return s, nil
}

// peerExtra loads the patched mod_client_certs on the VirtualHost.
func (b *bench) peerExtra() string {
	paths := strconv.Quote(b.peerPluginDir)
	if b.prof != nil {
		paths += ", " + strconv.Quote(b.profPluginDir)
	}
	return fmt.Sprintf("plugin_paths = { %s }\n\nVirtualHost %s\n\tmodules_enabled = { \"client_certs\" }\n",
		paths, strconv.Quote(b.domain))
}

// startComponent runs `saslcert serve` for in and waits until it is
// connected to its Prosody.
func (b *bench) startComponent(ctx context.Context, in *instance) error {
	dataDir := filepath.Join(in.dir, "component")
	out := filepath.Join(in.dir, "component.log")
	var p *proc
	var err error
	if b.prof == nil {
		args := []string{"--log-level", "info", "serve",
			"--server-addr", "127.0.0.1:" + in.compPort, "--component", b.component, "--domain", b.domain,
			"--data-dir", dataDir}
		if b.cfg.cacheTTL != "" {
			args = append(args, "--plugin-cache-ttl", b.cfg.cacheTTL)
		}
		if in.store != "" {
			args = append(args, "--store", in.store)
		}
		p, err = startProc("component-"+in.name, in.dir, out,
			[]string{"SASLCERT_SECRET_FILE=" + in.secretFile}, false, b.cfg.saslcert, args...)
	} else {
		// Profiling: this program is the component (same wiring and
		// defaults as saslcert serve) so that runtime/pprof can sample it.
		exe, xerr := os.Executable()
		if xerr != nil {
			return xerr
		}
		p, err = startProc("component-"+in.name, in.dir, out, nil, true, exe, componentChildArg,
			"-server-addr", "127.0.0.1:"+in.compPort, "-component", b.component, "-domain", b.domain,
			"-secret-file", in.secretFile, "-data-dir", dataDir)
	}
	if err != nil {
		return err
	}
	in.comp = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p.exited() {
			return fmt.Errorf("the component of %s exited:\n%s", in.name, tailFile(out, 4<<10))
		}
		if l, _ := os.ReadFile(out); strings.Contains(string(l), "connected to the server") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the component of %s did not connect in 30 s:\n%s", in.name, tailFile(out, 4<<10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
