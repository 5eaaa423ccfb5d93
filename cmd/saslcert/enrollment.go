package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/est"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/enroll/stepca"
	"github.com/saslcert/saslcert/httpserve"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
)

// Issuer names in --ca and in policies.
const (
	issuerEmbedded = enroll.EmbeddedIssuer
	issuerStepCA   = "stepca"
	issuerEST      = "est"
	issuerNone     = "none"
	// trustEmbedded in trusted_roots names the embedded CA.
	trustEmbedded = "embedded"
)

// defaultRenewBefore is --renew-before's default (enroll.DefaultRenewBefore).
const defaultRenewBefore = "1/3"

// enrollFlags are serve's enrollment settings (see docs/ENROLLMENT.md).
func enrollFlags() []cli.Flag {
	s := func(name, usage string) cli.Flag {
		env := "SASLCERT_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		return altsrc.NewStringFlag(&cli.StringFlag{Name: name, Usage: usage, EnvVars: []string{env}})
	}
	return []cli.Flag{
		s("ca", "issuer of domains without a [policy] in --config: embedded, stepca, est or none (default: embedded if DATA-DIR/ca exists, else none)"),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "cert-lifetime", Value: enroll.DefaultLifetime, Usage: "lifetime of issued certificates (a policy's lifetime wins)", EnvVars: []string{"SASLCERT_CERT_LIFETIME"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "renew-before", Value: defaultRenewBefore, Usage: "renew issued certificates when this much of their lifetime is left: a fraction (1/3, 33%), a duration (48h) or never", EnvVars: []string{"SASLCERT_RENEW_BEFORE"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "renew-interval", Value: server.DefaultRenewInterval, Usage: "how often certificates due for renewal are looked for", EnvVars: []string{"SASLCERT_RENEW_INTERVAL"}}),
		altsrc.NewIntFlag(&cli.IntFlag{Name: "issue-burst", Value: enroll.DefaultIssueBurst, Usage: "certificates one account may have issued at once (\"Request a certificate\"), before --issue-interval applies", EnvVars: []string{"SASLCERT_ISSUE_BURST"}}),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "issue-interval", Value: enroll.DefaultIssueEvery, Usage: "after --issue-burst, one more certificate per account every this long (0s: no rate limit)", EnvVars: []string{"SASLCERT_ISSUE_INTERVAL"}}),
		s("crl-listen", "serve the embedded CA's CRL over HTTP on this loopback address, e.g. 127.0.0.1:5281"),
		s("crl-url", "CRL distribution point written into certificates of the embedded CA (default: http://<crl-listen>/crl)"),
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "crl-max-age", Value: enroll.DefaultCRLMaxAge, Usage: "how long a CA's CRL is reused for logins without an upload (0: fetched for every such login)", EnvVars: []string{"SASLCERT_CRL_MAX_AGE"}}),
		s("stepca-url", "step-ca's URL, e.g. https://ca.example.org:9000"),
		s("stepca-provisioner", "step-ca JWK provisioner name"),
		s("stepca-key-file", "file with the provisioner's private JWK (JSON, not encrypted; mode 0600)"),
		s("stepca-root", "PEM file with step-ca's root certificate (TLS to step-ca is pinned to it)"),
		s("stepca-root-fingerprint", "instead of --stepca-root: the root's SHA-256 fingerprint (hex), fetched once from step-ca"),
		s("est-url", "EST server URL, e.g. https://est.example.org:8443"),
		s("est-label", "EST label (optional path segment after /.well-known/est)"),
		s("est-root", "PEM file with the trust anchor for TLS to the EST server"),
		s("est-credentials-file", "file whose first line is user:password for HTTP Basic at the EST server (mode 0600)"),
		s("est-client-cert", "PEM file with an RA client certificate for the EST server"),
		s("est-client-key", "PEM file with the RA client certificate's key (mode 0600)"),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "est-allow-server-auth", Usage: "accept EST certificates whose extended key usage has serverAuth next to clientAuth (for CAs that add it to every certificate)", EnvVars: []string{"SASLCERT_EST_ALLOW_SERVER_AUTH"}}),
	}
}

// enrollSettings are the enrollment settings serve was given.
type enrollSettings struct {
	ca            string // as given ("" = automatic)
	lifetime      time.Duration
	renewBefore   enroll.RenewBefore
	renewInterval time.Duration
	issueBurst    int
	issueEvery    time.Duration
	crlListen     string
	crlURL        string
	crlMaxAge     time.Duration
	configFile    string

	stepURL, stepProv, stepKey, stepRoot, stepFP         string
	estURL, estLabel, estRoot, estCreds, estCert, estKey string
	estServerAuth                                        bool
}

func enrollSettingsFrom(c *cli.Context) (enrollSettings, error) {
	es := enrollSettings{
		ca:            strings.TrimSpace(c.String("ca")),
		lifetime:      c.Duration("cert-lifetime"),
		renewInterval: c.Duration("renew-interval"),
		issueBurst:    c.Int("issue-burst"),
		issueEvery:    c.Duration("issue-interval"),
		crlListen:     c.String("crl-listen"),
		crlURL:        c.String("crl-url"),
		crlMaxAge:     c.Duration("crl-max-age"),
		configFile:    c.String("config"),
		stepURL:       c.String("stepca-url"),
		stepProv:      c.String("stepca-provisioner"),
		stepKey:       c.String("stepca-key-file"),
		stepRoot:      c.String("stepca-root"),
		stepFP:        c.String("stepca-root-fingerprint"),
		estURL:        c.String("est-url"),
		estLabel:      c.String("est-label"),
		estRoot:       c.String("est-root"),
		estCreds:      c.String("est-credentials-file"),
		estCert:       c.String("est-client-cert"),
		estKey:        c.String("est-client-key"),
		estServerAuth: c.Bool("est-allow-server-auth"),
	}
	switch es.ca {
	case "", issuerEmbedded, issuerStepCA, issuerEST, issuerNone:
	default:
		return es, fmt.Errorf("--ca %q: want embedded, stepca, est or none", es.ca)
	}
	if es.lifetime < enroll.MinLifetime || es.lifetime > enroll.MaxLifetime {
		return es, fmt.Errorf("--cert-lifetime %s: want between %s and %s", es.lifetime, enroll.MinLifetime, enroll.MaxLifetime)
	}
	rb, err := enroll.ParseRenewBefore(c.String("renew-before"))
	if err != nil {
		return es, fmt.Errorf("--%v", err)
	}
	es.renewBefore = rb
	if rb.Duration > 0 && rb.Duration >= es.lifetime {
		return es, fmt.Errorf("--renew-before %s is not shorter than --cert-lifetime %s: every certificate would be renewed at every sweep", rb.Duration, es.lifetime)
	}
	if es.renewInterval < time.Second {
		return es, fmt.Errorf("--renew-interval %s: want at least 1s", es.renewInterval)
	}
	if es.issueBurst < 1 || es.issueBurst > 1000 {
		return es, fmt.Errorf("--issue-burst %d: want between 1 and 1000", es.issueBurst)
	}
	switch {
	case es.issueEvery < 0:
		return es, fmt.Errorf("--issue-interval %s: must not be negative", es.issueEvery)
	case es.issueEvery == 0:
		es.issueEvery = -1 // enroll.ServiceConfig: no rate limit
	}
	if es.crlMaxAge < 0 {
		return es, fmt.Errorf("--crl-max-age %s: must not be negative", es.crlMaxAge)
	}
	if es.crlListen != "" {
		if _, _, err := net.SplitHostPort(es.crlListen); err != nil {
			return es, fmt.Errorf("--crl-listen %q: want a loopback host:port such as 127.0.0.1:5281", es.crlListen)
		}
		if es.crlURL == "" {
			es.crlURL = "http://" + es.crlListen + "/crl"
		}
	}
	return es, nil
}

// policyFile is the part of the --config TOML file that only enrollment
// reads: one [policy."<domain>"] table per served domain.
type policyFile struct {
	Policy map[string]policyTable `toml:"policy"`
}

type policyTable struct {
	Issuer          *string  `toml:"issuer"`
	Lifetime        *string  `toml:"lifetime"`
	AllowSelfSigned *bool    `toml:"allow_self_signed"`
	TrustedRoots    []string `toml:"trusted_roots"`
	CRLURLs         []string `toml:"crl_urls"`
}

// readPolicyFile reads the [policy] tables of the TOML file path ("" or a
// file without them: none). Unknown keys inside a policy are errors.
func readPolicyFile(path string) (map[string]policyTable, error) {
	if path == "" {
		return nil, nil
	}
	var f policyFile
	md, err := toml.DecodeFile(path, &f)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "policy" {
			return nil, fmt.Errorf("--config %s: unknown policy setting %s (known: issuer, lifetime, allow_self_signed, trusted_roots, crl_urls)", path, k)
		}
	}
	return f.Policy, nil
}

// enrollment is serve's enrollment: the service's configuration (package
// server builds the service from it) and what runs beside it.
type enrollment struct {
	cfg      enroll.ServiceConfig // without Store
	svc      *enroll.Service      // built by openEnrollment, for --check and tests
	ca       *localca.CA          // the embedded CA, if loaded
	settings enrollSettings
	issuers  []string
}

// openEnrollment is loadEnrollment with its service built over db.
func openEnrollment(ctx context.Context, e *env, sc serveConfig, db storage.Store) (*enrollment, error) {
	en, err := loadEnrollment(ctx, e, sc)
	if en == nil || err != nil {
		return nil, err
	}
	cfg := en.cfg
	cfg.Store = db
	if en.svc, err = enroll.NewService(cfg); err != nil {
		return nil, err
	}
	return en, nil
}

// loadEnrollment loads the CAs and policies serve's settings name and
// returns the enrollment's configuration (checked by enroll.NewService:
// openEnrollment), or nil if there is nothing to do (no issuer, no trusted
// roots and self-signed uploads allowed everywhere).
func loadEnrollment(_ context.Context, e *env, sc serveConfig) (*enrollment, error) {
	es := sc.enroll
	caDir := filepath.Join(sc.dataDir, caSubdir)
	_, statErr := os.Stat(filepath.Join(caDir, localca.CertFile))
	caExists := statErr == nil
	def := es.ca
	if def == "" {
		def = issuerNone
		if caExists {
			def = issuerEmbedded
		}
	}
	tables, err := readPolicyFile(es.configFile)
	if err != nil {
		return nil, err
	}
	for d := range tables {
		if !slices.Contains(sc.comp.ServerDomains, d) {
			return nil, fmt.Errorf("--config: [policy.%q] is not a served domain (--domain: %s)", d, strings.Join(sc.comp.ServerDomains, ", "))
		}
	}
	// Which CAs are needed?
	need := map[string]bool{}
	if def != issuerNone {
		need[def] = true
	}
	for _, t := range tables {
		if t.Issuer != nil && *t.Issuer != issuerNone && *t.Issuer != "" {
			need[*t.Issuer] = true
		}
		if slices.Contains(t.TrustedRoots, trustEmbedded) {
			need[issuerEmbedded] = true
		}
	}
	en := &enrollment{settings: es}
	issuers := map[string]enroll.Issuer{}
	if need[issuerEmbedded] || caExists {
		if !caExists {
			return nil, fmt.Errorf("the embedded CA is used but %s holds none; create it with 'saslcert ca init --data-dir %s'", caDir, sc.dataDir)
		}
		ca, err := localca.Load(caDir, localca.Options{Lifetime: es.lifetime, CRLURL: es.crlURL, Now: e.now})
		if err != nil {
			return nil, err
		}
		en.ca = ca
		issuers[issuerEmbedded] = ca
	}
	if es.crlListen != "" && en.ca == nil {
		return nil, fmt.Errorf("--crl-listen: there is no embedded CA in %s whose CRL could be served", caDir)
	}
	if es.stepURL != "" || need[issuerStepCA] {
		c, err := stepCAFromSettings(e, es)
		if err != nil {
			return nil, err
		}
		issuers[issuerStepCA] = c
	}
	if es.estURL != "" || need[issuerEST] {
		c, err := estFromSettings(e, es)
		if err != nil {
			return nil, err
		}
		issuers[issuerEST] = c
	}
	policies := enroll.Policies{}
	active := false
	for _, d := range sc.comp.ServerDomains {
		p := enroll.DomainPolicy{Issuer: def, Lifetime: es.lifetime, AllowSelfSigned: true}
		if t, ok := tables[d]; ok {
			if t.Issuer != nil {
				p.Issuer = *t.Issuer
			}
			if t.Lifetime != nil {
				lt, err := time.ParseDuration(*t.Lifetime)
				if err != nil {
					return nil, fmt.Errorf("--config: [policy.%q] lifetime %q: %v", d, *t.Lifetime, err)
				}
				if es.renewBefore.Duration > 0 && es.renewBefore.Duration >= lt {
					return nil, fmt.Errorf("--config: [policy.%q] lifetime %s is not longer than --renew-before %s: every certificate would be renewed at every sweep", d, lt, es.renewBefore.Duration)
				}
				p.Lifetime = lt
			}
			if t.AllowSelfSigned != nil {
				p.AllowSelfSigned = *t.AllowSelfSigned
			}
			for _, r := range t.TrustedRoots {
				roots, inter, err := trustFrom(r, en.ca)
				if err != nil {
					return nil, fmt.Errorf("--config: [policy.%q] trusted_roots: %w", d, err)
				}
				p.TrustedRoots = append(p.TrustedRoots, roots...)
				p.Intermediates = append(p.Intermediates, inter...)
			}
			p.CRLURLs = t.CRLURLs
		}
		if p.Issuer == issuerNone {
			p.Issuer = ""
		}
		if p.Issuer != "" || !p.AllowSelfSigned || len(p.TrustedRoots) > 0 {
			active = true
		}
		policies[d] = p
	}
	if !active && en.ca == nil {
		return nil, nil
	}
	for n := range issuers {
		en.issuers = append(en.issuers, n)
	}
	sort.Strings(en.issuers)
	crlMax := es.crlMaxAge
	if crlMax == 0 {
		crlMax = -1 // fetched for every login
	}
	en.cfg = enroll.ServiceConfig{
		Issuers:       issuers,
		Policies:      policies,
		KeyPolicy:     sc.policy,
		RenewBefore:   es.renewBefore,
		MaxPerAccount: sc.limits.MaxPerAccount,
		MaxNameLen:    sc.limits.MaxNameLen,
		IssueBurst:    es.issueBurst,
		IssueEvery:    es.issueEvery,
		CRLMaxAge:     crlMax,
		Component:     sc.comp.JID,
		Now:           e.now,
		Logger:        e.log.With("part", "enroll"),
	}
	for _, d := range sc.comp.ServerDomains {
		p := policies[d]
		issuer := p.Issuer
		if issuer == "" {
			issuer = issuerNone
		}
		e.log.Info("enrollment policy", "domain", d, "issuer", issuer, "lifetime", p.EffectiveLifetime().String(),
			"allow_self_signed", p.AllowSelfSigned, "trusted_roots", len(p.TrustedRoots), "intermediates", len(p.Intermediates),
			"crl_urls", strings.Join(p.CRLURLs, ","))
	}
	return en, nil
}

// trustFrom reads one trusted_roots entry: "embedded" (the embedded CA's
// root, with its issuing CA as intermediate) or a PEM file whose
// self-signed certificates are roots and the others intermediates.
func trustFrom(entry string, ca *localca.CA) (roots, intermediates []*x509.Certificate, err error) {
	if entry == trustEmbedded {
		if ca == nil {
			return nil, nil, errors.New(`"embedded": there is no embedded CA`)
		}
		return []*x509.Certificate{ca.Root()}, []*x509.Certificate{ca.Cert()}, nil
	}
	certs, err := readPEMCerts(entry)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range certs {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots = append(roots, c)
		} else {
			intermediates = append(intermediates, c)
		}
	}
	if len(roots) == 0 {
		return nil, nil, fmt.Errorf("%s: no self-signed (root) certificate", entry)
	}
	return roots, intermediates, nil
}

// readPEMCerts reads every CERTIFICATE block of a PEM file (at least one).
func readPEMCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := enroll.ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// readSecretFile reads a file holding a secret, refusing one that others may
// read.
func readSecretFile(flag, path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("--%s %s: accessible to others (mode %04o); chmod 600 it", flag, path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return data, nil
}

func stepCAFromSettings(e *env, es enrollSettings) (*stepca.Client, error) {
	switch {
	case es.stepURL == "":
		return nil, errors.New("step-ca is used but --stepca-url is not set")
	case es.stepProv == "":
		return nil, errors.New("--stepca-provisioner is required with --stepca-url")
	case es.stepKey == "":
		return nil, errors.New("--stepca-key-file is required with --stepca-url")
	case es.stepRoot == "" && es.stepFP == "":
		return nil, errors.New("--stepca-root (or --stepca-root-fingerprint) is required with --stepca-url")
	}
	keyData, err := readSecretFile("stepca-key-file", es.stepKey)
	if err != nil {
		return nil, err
	}
	key, kid, err := stepca.ParseKey(keyData)
	if err != nil {
		return nil, fmt.Errorf("--stepca-key-file %s: %w", es.stepKey, err)
	}
	cfg := stepca.Config{URL: es.stepURL, Provisioner: es.stepProv, Key: key, KeyID: kid, RootFingerprint: es.stepFP,
		Lifetime: es.lifetime, Now: e.now}
	if es.stepRoot != "" {
		certs, err := readPEMCerts(es.stepRoot)
		if err != nil {
			return nil, fmt.Errorf("--stepca-root: %w", err)
		}
		cfg.Root = certs[0]
	}
	return stepca.New(cfg)
}

func estFromSettings(e *env, es enrollSettings) (*est.Client, error) {
	switch {
	case es.estURL == "":
		return nil, errors.New("EST is used but --est-url is not set")
	case es.estRoot == "":
		return nil, errors.New("--est-root is required with --est-url")
	case (es.estCert == "") != (es.estKey == ""):
		return nil, errors.New("--est-client-cert and --est-client-key go together")
	}
	roots, err := readPEMCerts(es.estRoot)
	if err != nil {
		return nil, fmt.Errorf("--est-root: %w", err)
	}
	cfg := est.Config{URL: es.estURL, Label: es.estLabel, Root: roots[0], Now: e.now, AllowServerAuth: es.estServerAuth}
	if es.estCreds != "" {
		data, err := readSecretFile("est-credentials-file", es.estCreds)
		if err != nil {
			return nil, err
		}
		line, _, _ := strings.Cut(string(data), "\n")
		user, pass, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("--est-credentials-file %s: the first line must be user:password", es.estCreds)
		}
		cfg.Username, cfg.Password = user, pass
	}
	if es.estCert != "" {
		if _, err := readSecretFile("est-client-key", es.estKey); err != nil {
			return nil, err
		}
		pair, err := tls.LoadX509KeyPair(es.estCert, es.estKey)
		if err != nil {
			return nil, fmt.Errorf("--est-client-cert/--est-client-key: %w", err)
		}
		cfg.ClientCert = &pair
	}
	return est.New(cfg)
}

// serveCRL serves the embedded CA's CRL on --crl-listen until ctx ends.
func (en *enrollment) serveCRL(ctx context.Context, e *env) (stop func(), err error) {
	if en.settings.crlListen == "" || en.ca == nil {
		return func() {}, nil
	}
	ln, err := localca.ListenLoopback(ctx, en.settings.crlListen)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", en.ca.CRLHandler())
	srv, err := httpserve.Start(ln, mux, httpserve.DefaultLimits(), e.log.With("part", "crl"))
	if err != nil {
		return nil, err
	}
	e.log.Info("serving the embedded CA's CRL", "addr", ln.Addr().String(), "crl_url", en.settings.crlURL)
	return func() { srv.Stop(2 * time.Second) }, nil
}
