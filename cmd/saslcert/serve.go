package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/backend"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/xep0257"
)

// serveCommand is "saslcert serve": run the component.
func serveCommand(e *env) *cli.Command {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "check", Usage: "check the settings, open (or create) the database, print the effective settings and exit"},
		&cli.StringFlag{Name: "config", Usage: "optional TOML file with any of these settings (flags and SASLCERT_* variables win)", EnvVars: []string{"SASLCERT_CONFIG"}},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "server-addr", Value: "127.0.0.1:5347", Usage: "the XMPP server's component port (host:port)", EnvVars: []string{"SASLCERT_SERVER_ADDR"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "component", Usage: "the component's JID, e.g. certs.example.org", EnvVars: []string{"SASLCERT_COMPONENT"}}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "domain", Usage: "a served XMPP domain (repeat, or comma-separate)", EnvVars: []string{"SASLCERT_DOMAINS"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "secret-file", Usage: "file holding the component secret (first line); or set SASLCERT_SECRET", EnvVars: []string{"SASLCERT_SECRET_FILE"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data-dir", Value: defaultDataDir, Usage: "directory of the SQLite database (" + DBFile + ")", EnvVars: []string{"SASLCERT_DATA_DIR"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "clock-skew", Value: sasl.DefaultPolicy().ClockSkew, Usage: "allowed clock difference at both ends of a certificate's validity", EnvVars: []string{"SASLCERT_CLOCK_SKEW"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "min-rsa-bits", Value: sasl.DefaultPolicy().MinRSABits, Usage: "smallest RSA key accepted", EnvVars: []string{"SASLCERT_MIN_RSA_BITS"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-certs", Value: xep0257.DefaultLimits().MaxPerAccount, Usage: "active certificates per account", EnvVars: []string{"SASLCERT_MAX_CERTS"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-cert-size", Value: xep0257.DefaultLimits().MaxCertSize, Usage: "bytes of base64 in <x509cert>", EnvVars: []string{"SASLCERT_MAX_CERT_SIZE"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-history", Value: xep0257.DefaultLimits().MaxHistory, Usage: "disabled and revoked certificates that have not expired an account may keep when it uploads one (expired ones are deleted a day after notAfter)", EnvVars: []string{"SASLCERT_MAX_HISTORY"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-appends-per-hour", Value: server.DefaultAppendsPerHour, Usage: "XEP-0257 uploads per account and hour (all at once, then spread over the hour)", EnvVars: []string{"SASLCERT_MAX_APPENDS_PER_HOUR"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "audit-retention", Value: server.DefaultAuditRetention, Usage: "how long audit entries are kept (pruned hourly; at least 24h)", EnvVars: []string{"SASLCERT_AUDIT_RETENTION"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-name-len", Value: xep0257.DefaultLimits().MaxNameLen, Usage: "characters in a certificate's <name>", EnvVars: []string{"SASLCERT_MAX_NAME_LEN"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "request-timeout", Value: component.DefaultRequestTimeout, Usage: "bound on one request (store call, plugin round trip)", EnvVars: []string{"SASLCERT_REQUEST_TIMEOUT"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "store", Usage: storeUsage, EnvVars: []string{"SASLCERT_STORE"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "store-password-file", Usage: storePasswordUsage, EnvVars: []string{"SASLCERT_STORE_PASSWORD_FILE"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "store-wait", Value: defaultStoreWait, Usage: storeWaitUsage, EnvVars: []string{"SASLCERT_STORE_WAIT"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "instance", Usage: "this process's name among several serving one shared store (its mark of how far it passed the audit log on); default: the component JID", EnvVars: []string{"SASLCERT_INSTANCE"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "busy-timeout", Value: sqlite.DefaultBusyTimeout, Usage: "how long a write waits for a locked database", EnvVars: []string{"SASLCERT_BUSY_TIMEOUT"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "max-in-flight", Value: component.DefaultMaxInFlight, Usage: "requests processed at once", EnvVars: []string{"SASLCERT_MAX_IN_FLIGHT"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "plugin-cache-ttl", Value: server.DefaultPluginCacheTTL, Usage: "how long the server plugin may reuse a login decision or an <items/> list; every change made through this component reaches the plugin before it is acknowledged (0: no caching; use 0 if anything else writes the store)", EnvVars: []string{"SASLCERT_PLUGIN_CACHE_TTL"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "admin-watch-interval", Value: server.DefaultAdminWatch, Usage: "how often the audit log is read for changes made by 'saslcert cert' commands, which are then passed on to the server (forget cached answers, close sessions of revoked certificates); 0: never", EnvVars: []string{"SASLCERT_ADMIN_WATCH_INTERVAL"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http-listen", Usage: "address of the HTTP listener (OAuth2, /v1 API, WebFinger, /healthz, /readyz), e.g. 127.0.0.1:8443; off if empty; plain HTTP on loopback only", EnvVars: []string{"SASLCERT_HTTP_LISTEN"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http-tls-cert", Usage: "PEM certificate chain of the HTTP listener (with --http-tls-key; required unless --http-listen is loopback)", EnvVars: []string{"SASLCERT_HTTP_TLS_CERT"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http-tls-key", Usage: "PEM private key of the HTTP listener", EnvVars: []string{"SASLCERT_HTTP_TLS_KEY"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "http-public-url", Usage: "public base URL of the HTTP listener, e.g. https://certs.example.org: the OAuth issuer identifier and token audience, the base of WebFinger links (https unless loopback)", EnvVars: []string{"SASLCERT_HTTP_PUBLIC_URL"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "metrics-listen", Usage: "address of the Prometheus listener serving /metrics, e.g. 127.0.0.1:9257; off if empty", EnvVars: []string{"SASLCERT_METRICS_LISTEN"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "ping-interval", Value: component.DefaultPingInterval, Usage: "how often the link to the server is checked", EnvVars: []string{"SASLCERT_PING_INTERVAL"}}),
	}
	flags = append(flags, enrollFlags()...)
	flags = append(flags, oauthFlags()...)
	return &cli.Command{
		Name:      "serve",
		Usage:     "run the component: connect to the XMPP server and serve XEP-0257 and SASL EXTERNAL lookups",
		ArgsUsage: " ",
		Description: "Connects to the server's component port (XEP-0114) as --component, reconnecting with backoff, " +
			"and serves until SIGINT or SIGTERM, when it finishes the requests under way and closes the stream. " +
			"The secret is read from --secret-file or the SASLCERT_SECRET variable, never from a flag. " +
			"With a CA (the embedded one in DATA-DIR/ca, made by 'saslcert ca init', or --ca stepca|est) it also offers the " +
			"XEP-0050 commands \"Request a certificate\" and \"Fetch my latest certificate\", renews issued certificates before " +
			"they expire and revokes them at the CA when they are revoked; [policy.\"<domain>\"] tables in --config set " +
			"each domain's issuer, lifetime, whether self-signed uploads are allowed and which CAs' certificates may log in " +
			"without an upload (docs/ENROLLMENT.md).",
		Flags: flags,
		Before: func(c *cli.Context) error {
			if path := c.String("config"); path != "" {
				if err := checkConfigKeys(path, flags); err != nil {
					return usageErrorf("serve: %v", err)
				}
			}
			return altsrc.InitInputSourceWithContext(flags, altsrc.NewTomlSourceFromFlagFunc("config"))(c)
		},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf("serve takes no arguments, got %q", c.Args().First())
			}
			cfg, err := serveConfigFrom(c)
			if err != nil {
				return usageErrorf("serve: %v", err)
			}
			if c.Bool("check") {
				return checkServe(c.Context, e, cfg)
			}
			return serve(c.Context, e, cfg)
		},
	}
}

// serveConfig is everything serve needs, checked.
type serveConfig struct {
	comp    component.Config
	dataDir string
	// store is the --store URL ("": sqlite: in dataDir).
	store  string
	policy sasl.Policy
	limits xep0257.Limits
	busy   time.Duration
	enroll enrollSettings
	// adminWatch is how often the audit log is read for the admin
	// commands' changes (lifecycle.Manager.Watch); 0: never.
	adminWatch time.Duration
	// appendsPerHour limits XEP-0257 appends per account.
	appendsPerHour int
	// auditRetention: audit entries older than this are pruned.
	auditRetention time.Duration
	// storePassword is the --store-password-file, storeWait --store-wait.
	storePassword string
	storeWait     time.Duration
	// instance names this process among several on one store ("": the
	// component JID).
	instance string
	// http is the HTTP and metrics listeners' configuration (checked by
	// server.CheckHTTP).
	http server.HTTPConfig
	// oauth are the OAuth2 settings (with http).
	oauth oauthSettings
}

// defaultStoreWait is --store-wait's default: serve waits for a PostgreSQL
// store that is not up yet (both started at boot).
const defaultStoreWait = time.Minute

func serveConfigFrom(c *cli.Context) (serveConfig, error) {
	var sc serveConfig
	compJID, err := sasl.ParseJID(c.String("component"))
	switch {
	case c.String("component") == "":
		return sc, errors.New("--component (SASLCERT_COMPONENT) is required, e.g. certs.example.org")
	case errors.Is(err, sasl.ErrJIDForms):
		return sc, fmt.Errorf("--component %q: %w", c.String("component"), err)
	case err != nil || compJID.Localpart() != "" || compJID.Resourcepart() != "":
		return sc, fmt.Errorf("--component %q: want a domain JID such as certs.example.org", c.String("component"))
	}
	var domains []string
	for _, d := range c.StringSlice("domain") {
		for _, part := range strings.Split(d, ",") {
			if part = strings.TrimSpace(part); part != "" {
				domains = append(domains, part)
			}
		}
	}
	if len(domains) == 0 {
		return sc, errors.New("--domain (SASLCERT_DOMAINS) is required: the XMPP domains whose users this component serves")
	}
	secret, err := readSecret(c.String("secret-file"))
	if err != nil {
		return sc, err
	}
	if c.Int("min-rsa-bits") < 2048 {
		return sc, fmt.Errorf("--min-rsa-bits %d: at least 2048", c.Int("min-rsa-bits"))
	}
	for _, name := range []string{"max-certs", "max-cert-size", "max-name-len", "max-in-flight", "max-history", "max-appends-per-hour"} {
		if c.Int(name) < 1 {
			return sc, fmt.Errorf("--%s %d: want a positive number", name, c.Int(name))
		}
	}
	if c.String("data-dir") == "" {
		return sc, errors.New("--data-dir must not be empty")
	}
	if w := c.Duration("admin-watch-interval"); w < 0 || (w > 0 && w < 100*time.Millisecond) || w > watcherAlive/3 {
		return sc, fmt.Errorf("--admin-watch-interval %v: want 0 (off) or between 100ms and %v", w, watcherAlive/3)
	}
	sc.adminWatch = c.Duration("admin-watch-interval")
	if ttl := c.Duration("plugin-cache-ttl"); ttl < 0 || (ttl > 0 && ttl < time.Second) || ttl > 24*time.Hour {
		return sc, fmt.Errorf("--plugin-cache-ttl %v: want 0 (off) or between 1s and 24h", ttl)
	}
	sc.comp = component.Config{
		Addr:           c.String("server-addr"),
		JID:            compJID,
		Secret:         secret,
		ServerDomains:  domains,
		RequestTimeout: c.Duration("request-timeout"),
		MaxInFlight:    c.Int("max-in-flight"),
		PingInterval:   c.Duration("ping-interval"),
		CacheTTL:       c.Duration("plugin-cache-ttl"),
	}
	sc.dataDir = c.String("data-dir")
	sc.store = c.String("store")
	if _, err := backend.Parse(sc.store, sc.dataDir); err != nil {
		return sc, fmt.Errorf("--store: %w", err)
	}
	if skew := c.Duration("clock-skew"); skew < 0 || skew > maxClockSkew {
		return sc, fmt.Errorf("--clock-skew %v: want between 0 and %v", skew, maxClockSkew)
	}
	sc.policy = sasl.Policy{ClockSkew: c.Duration("clock-skew"), MinRSABits: c.Int("min-rsa-bits")}
	sc.limits = xep0257.Limits{MaxCertSize: c.Int("max-cert-size"), MaxPerAccount: c.Int("max-certs"), MaxNameLen: c.Int("max-name-len"),
		MaxHistory: c.Int("max-history")}
	sc.appendsPerHour = c.Int("max-appends-per-hour")
	if sc.auditRetention = c.Duration("audit-retention"); sc.auditRetention < server.MinAuditRetention {
		return sc, fmt.Errorf("--audit-retention %v: want at least %v", sc.auditRetention, server.MinAuditRetention)
	}
	sc.busy = c.Duration("busy-timeout")
	sc.storePassword, sc.storeWait, sc.instance = c.String("store-password-file"), c.Duration("store-wait"), c.String("instance")
	if sc.storeWait < 0 {
		return sc, fmt.Errorf("--store-wait %v: want 0 or more", sc.storeWait)
	}
	sc.http = server.HTTPConfig{
		Listen: c.String("http-listen"), TLSCert: c.String("http-tls-cert"), TLSKey: c.String("http-tls-key"),
		PublicURL: c.String("http-public-url"), MetricsListen: c.String("metrics-listen"),
	}
	if err := server.CheckHTTP(sc.http); err != nil {
		return sc, err
	}
	if sc.enroll, err = enrollSettingsFrom(c); err != nil {
		return sc, err
	}
	if sc.oauth, err = oauthSettingsFrom(c); err != nil {
		return sc, err
	}
	return sc, nil
}

// CredentialName is the name of the systemd credential holding the
// component secret: the package's unit passes it with
// LoadCredential=component.secret:/etc/saslcert/component.secret, and
// serve reads $CREDENTIALS_DIRECTORY/component.secret when neither
// --secret-file nor SASLCERT_SECRET is set.
const CredentialName = "component.secret"

// readSecret returns the component secret from file; when file is empty,
// from SASLCERT_SECRET, or else from the systemd credential CredentialName
// in $CREDENTIALS_DIRECTORY. The secret is the first line, without
// surrounding white space; it must not be empty.
func readSecret(file string) ([]byte, error) {
	if file == "" {
		if s := strings.TrimSpace(os.Getenv("SASLCERT_SECRET")); s != "" {
			return []byte(s), nil
		}
		dir := os.Getenv("CREDENTIALS_DIRECTORY")
		if dir == "" {
			return nil, errors.New("no component secret: set --secret-file (SASLCERT_SECRET_FILE) or SASLCERT_SECRET, or pass the systemd credential " + CredentialName)
		}
		file = filepath.Join(dir, CredentialName)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	if fi.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("--secret-file %s can be read by every user (mode %04o); run chmod o-rwx on it", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--secret-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return nil, fmt.Errorf("--secret-file %s: the first line is empty", file)
	}
	return []byte(line), nil
}

// openServeStore checks the data directory's permissions, creates it if
// need be and opens the store (serve and serve --check alike); the error is
// the command's.
func openServeStore(ctx context.Context, e *env, sc serveConfig) (storage.Store, string, error) {
	if err := checkPermissions(sc.dataDir); err != nil {
		return nil, "", cli.Exit(fmt.Sprintf("serve: %v", err), exitFailure)
	}
	if err := os.MkdirAll(sc.dataDir, 0o700); err != nil {
		return nil, "", cli.Exit(fmt.Sprintf("data directory: %v", err), exitFailure)
	}
	db, target, err := e.openStore(ctx, sc.store, storeOpts{dataDir: sc.dataDir, busy: sc.busy, passwordFile: sc.storePassword, wait: sc.storeWait})
	if err != nil {
		return nil, "", cli.Exit(fmt.Sprintf("open %s: %v", target, err), exitFailure)
	}
	return db, target.String(), nil
}

// serve opens the store and runs the component until ctx is done.
func serve(ctx context.Context, e *env, sc serveConfig) error {
	started := e.now()
	db, dbPath, err := openServeStore(ctx, e, sc)
	if err != nil {
		return err
	}
	defer db.Close()

	// The settings are checked (policies, CAs, keys) before anything runs;
	// the service builds its own enrolment over its life-cycle owner.
	en, err := openEnrollment(ctx, e, sc, db)
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: enrollment: %v", err), exitFailure)
	}
	cfg := server.Config{
		Component:      sc.comp,
		Policy:         sc.policy,
		Limits:         sc.limits,
		AppendsPerHour: sc.appendsPerHour,
		AdminWatch:     sc.adminWatch,
		AuditRetention: sc.auditRetention,
		Instance:       sc.instance,
		HTTP:           sc.http,
	}
	if en != nil {
		cfg.Enroll = &en.cfg
		cfg.RenewInterval = sc.enroll.renewInterval
		if en.ca != nil {
			// The embedded CA's root and CRL are published on the HTTP
			// listener (and linked from WebFinger).
			cfg.HTTP.CARoot, cfg.HTTP.CRL = en.ca.Root(), en.ca.CRLHandler()
		}
	}
	svc, err := server.New(cfg, server.Deps{Store: db, Now: e.now, Logger: e.log})
	if err != nil {
		return usageErrorf("serve: %v", err)
	}
	// The OAuth2 server's routes; apiAuth checks the /v1 API's tokens.
	apiAuth, err := setupOAuth(ctx, e, sc, db, svc)
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: oauth: %v", err), exitFailure)
	}
	if apiAuth != nil {
		// The /v1 organisation API, on the same listener.
		a, err := svc.API(apiAuth)
		if err != nil {
			return cli.Exit(fmt.Sprintf("serve: api: %v", err), exitFailure)
		}
		svc.AddRoutes(a)
	}
	if en != nil {
		stopCRL, err := en.serveCRL(ctx, e)
		if err != nil {
			return cli.Exit(fmt.Sprintf("serve: %v", err), exitFailure)
		}
		defer stopCRL()
		e.log.Info("enrollment enabled", "issuers", strings.Join(en.issuers, ","), "renew_before", sc.enroll.renewBefore.String(),
			"renew_interval", sc.enroll.renewInterval.String())
	}
	e.log.Info("saslcert serving", "component", sc.comp.JID.String(), "server", sc.comp.Addr,
		"domains", strings.Join(sc.comp.ServerDomains, ","), "db", dbPath, "startup", e.now().Sub(started).String())
	if err := svc.Run(ctx); err != nil {
		return cli.Exit(fmt.Sprintf("serve: %v", err), exitFailure)
	}
	e.log.Info("saslcert stopped")
	return nil
}

// checkServe is serve --check: the settings are valid (serveConfigFrom ran),
// the database opens, and the effective settings are printed; the secret is
// never printed, only its length.
func checkServe(ctx context.Context, e *env, sc serveConfig) error {
	db, dbPath, err := openServeStore(ctx, e, sc)
	if err != nil {
		return err
	}
	defer db.Close()
	// Everything serve builds before it connects: policies, CAs, keys.
	en, err := openEnrollment(ctx, e, sc, db)
	if err != nil {
		return cli.Exit(fmt.Sprintf("serve: enrollment: %v", err), exitFailure)
	}
	if err := server.CheckHTTPFiles(sc.http); err != nil {
		return cli.Exit(fmt.Sprintf("serve: %v", err), exitFailure)
	}
	w := e.stdout
	fmt.Fprintf(w, "server-addr:   %s\n", sc.comp.Addr)
	fmt.Fprintf(w, "component:     %s\n", sc.comp.JID)
	fmt.Fprintf(w, "domains:       %s\n", strings.Join(sc.comp.ServerDomains, ", "))
	fmt.Fprintf(w, "secret:        %d bytes (not shown)\n", len(sc.comp.Secret))
	fmt.Fprintf(w, "database:      %s (opened)\n", dbPath)
	fmt.Fprintf(w, "clock-skew:    %s\n", sc.policy.ClockSkew)
	fmt.Fprintf(w, "plugin cache:  %s\n", cacheTTLText(sc.comp.CacheTTL))
	fmt.Fprintf(w, "admin watch:   %s\n", adminWatchText(sc.adminWatch))
	fmt.Fprintf(w, "min-rsa-bits:  %d\n", sc.policy.MinRSABits)
	fmt.Fprintf(w, "limits:        %d certificates per account, %d bytes of base64, %d characters per name\n",
		sc.limits.MaxPerAccount, sc.limits.MaxCertSize, sc.limits.MaxNameLen)
	fmt.Fprintf(w, "history:       %d disabled or revoked per account, %d uploads per account and hour, audit kept %s\n",
		sc.limits.MaxHistory, sc.appendsPerHour, sc.auditRetention)
	fmt.Fprintf(w, "http:          %s\n", httpText(sc.http))
	if sc.http.MetricsListen != "" {
		fmt.Fprintf(w, "metrics:       http://%s/metrics\n", sc.http.MetricsListen)
	} else {
		fmt.Fprintln(w, "metrics:       off")
	}
	if en != nil {
		fmt.Fprintf(w, "enrollment:    issuers %s (policies and CAs loaded)\n", strings.Join(en.issuers, ", "))
	} else {
		fmt.Fprintln(w, "enrollment:    off")
	}
	fmt.Fprintln(w, "settings OK")
	return nil
}

// cacheTTLText describes --plugin-cache-ttl for --check.
func cacheTTLText(ttl time.Duration) string {
	if ttl <= 0 {
		return "off"
	}
	return ttl.String() + " (logins and <items/> lists; changes reach the plugin before they are acknowledged)"
}

// adminWatchText describes --admin-watch-interval for --check.
func adminWatchText(d time.Duration) string {
	if d <= 0 {
		return "off (restart the component after 'saslcert cert' changes)"
	}
	return "every " + d.String() + " (changes by 'saslcert cert' commands reach the server)"
}

// httpText describes the HTTP listener for --check.
func httpText(h server.HTTPConfig) string {
	if !h.Enabled() {
		return "off"
	}
	scheme := "https"
	if h.TLSCert == "" {
		scheme = "http (loopback only)"
	}
	return fmt.Sprintf("%s on %s, public URL %s", scheme, h.Listen, h.PublicURL)
}
