package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/backend"
)

const apiClientAddDescription = `Registers a client of the OAuth2 authorization server (served by
"saslcert serve --http-listen ..."): its id, the tenants (served domains) and
action scopes it may ask tokens for, and how it authenticates:
  --jwks-uri URL   it publishes its public keys there (private_key_jwt and the
                   jwt-bearer grant; keys may rotate, e.g. daily);
  --jwks-file F    its public JSON Web Key Set, registered now;
  --secret         a random secret, printed once (client_secret_basic/post);
                   only its argon2id hash is stored.
Scopes: ` + "certs:read certs:write certs:issue audit:read" + `.

Exit status: 0 registered; 1 the id is taken or the store cannot be written;
2 wrong usage.`

// apiCommand is "saslcert api": the OAuth2 side's administration.
func apiCommand(e *env) *cli.Command {
	storeFlags := func(more ...cli.Flag) []cli.Flag {
		return append([]cli.Flag{dataDirFlag(), storeFlag(), storePasswordFlag()}, more...)
	}
	return &cli.Command{
		Name:   "api",
		Usage:  "administer the HTTP API's OAuth2 clients and signing keys; sign client assertions",
		Action: groupAction,
		Subcommands: []*cli.Command{
			{
				Name: "client", Usage: "register, list, show and remove OAuth2 clients", Action: groupAction,
				Subcommands: []*cli.Command{
					{Name: "add", Usage: "register a client", ArgsUsage: " ", Description: apiClientAddDescription,
						Flags: storeFlags(
							&cli.StringFlag{Name: "id", Usage: "the client id", Required: true},
							&cli.StringSliceFlag{Name: "tenant", Usage: "a served domain the client may act on (repeat)", Required: true},
							&cli.StringFlag{Name: "scope", Usage: `the action scopes, space-separated, e.g. "certs:read certs:write"`, Required: true},
							&cli.StringFlag{Name: "jwks-uri", Usage: "URL of the client's public JWKS (https; http on loopback only)"},
							&cli.StringFlag{Name: "jwks-file", Usage: "file holding the client's public JWKS"},
							&cli.BoolFlag{Name: "secret", Usage: "give the client a secret (printed once)"},
						),
						Action: e.apiClientAdd},
					{Name: "list", Usage: "list the clients", ArgsUsage: " ", Flags: storeFlags(), Action: e.apiClientList},
					{Name: "show", Usage: "show a client", ArgsUsage: " ", Flags: storeFlags(&cli.StringFlag{Name: "id", Required: true, Usage: "the client id"}), Action: e.apiClientShow},
					{Name: "remove", Usage: "remove a client (its tokens stop working at once)", ArgsUsage: " ",
						Flags: storeFlags(&cli.StringFlag{Name: "id", Required: true, Usage: "the client id"}), Action: e.apiClientRemove},
				},
			},
			{
				Name: "keys", Usage: "saslcert's access-token signing keys", Action: groupAction,
				Subcommands: []*cli.Command{
					{Name: "rotate", Usage: "make a new signing key current (the old one stays published until its tokens expire)", ArgsUsage: " ",
						Flags: storeFlags(), Action: e.apiKeysRotate},
					{Name: "list", Usage: "list the signing keys", ArgsUsage: " ", Flags: storeFlags(), Action: e.apiKeysList},
				},
			},
			{
				Name: "assertion", Usage: "sign a client assertion (RFC 7523) with a private key file, for curl and scripts", ArgsUsage: " ",
				Description: `Prints a JWT for client_assertion (private_key_jwt) or assertion (the jwt-bearer
grant): iss = sub = --client-id, aud = --audience (saslcert's --http-public-url),
a random jti (good for one request), exp --lifetime ahead. The key file is a
PEM private key (EC P-256/P-384, RSA, Ed25519) or a private JWK; its kid is its
RFC 7638 thumbprint (as "saslcert api jwks" prints it) unless the JWK names one.`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "key", Usage: "the client's private key file", Required: true},
					&cli.StringFlag{Name: "client-id", Usage: "the client id", Required: true},
					&cli.StringFlag{Name: "audience", Usage: "saslcert's public URL (the issuer identifier)", Required: true},
					&cli.DurationFlag{Name: "lifetime", Value: oauth.DefaultAssertionMaxAge / 5, Usage: "how long the assertion is valid (at most the server's limit, 5m by default)"},
				},
				Action: e.apiAssertion,
			},
			{
				Name: "jwks", Usage: "print the public JWKS of private key files (what a client publishes or registers)", ArgsUsage: "KEY-FILE...",
				Action: e.apiJWKS,
			},
		},
	}
}

// openOAuthStore opens the store named by --store/--data-dir and returns its
// OAuthStore side (mustExist: refuse to create a database).
func (e *env) openOAuthStore(c *cli.Context, mustExist bool) (storage.OAuthStore, func(), error) {
	name := c.Command.HelpName
	if c.Args().Present() {
		return nil, nil, usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	db, target, err := e.openStore(c.Context, c.String("store"), adminStoreOpts(c, mustExist))
	switch {
	case errors.Is(err, backend.ErrNotExist):
		return nil, nil, cli.Exit(fmt.Sprintf("%s: no database at %s (is --data-dir right?): %v", name, target, err), exitFailure)
	case err != nil && target == (backend.Target{}):
		return nil, nil, usageErrorf("%s: --store: %v", name, err)
	case err != nil:
		return nil, nil, cli.Exit(fmt.Sprintf("%s: open %s: %v", name, target, err), exitFailure)
	}
	oas, ok := db.(storage.OAuthStore)
	if !ok {
		db.Close()
		return nil, nil, cli.Exit(fmt.Sprintf("%s: the store %s keeps no OAuth2 state", name, target), exitFailure)
	}
	return oas, func() { db.Close() }, nil
}

func failf(c *cli.Context, format string, args ...any) error {
	return cli.Exit(c.Command.HelpName+": "+fmt.Sprintf(format, args...), exitFailure)
}

func (e *env) apiClientAdd(c *cli.Context) error {
	name := c.Command.HelpName
	cl := &storage.OAuthClient{ID: c.String("id"), Scopes: strings.Fields(c.String("scope")), JWKSURI: c.String("jwks-uri")}
	if cl.ID == "" || strings.ContainsAny(cl.ID, " \t\r\n:") {
		return usageErrorf("%s: --id %q: want a non-empty id without spaces or colons", name, cl.ID)
	}
	for _, t := range c.StringSlice("tenant") {
		d, err := sasl.ParseJID(t)
		if err != nil || d.Localpart() != "" || d.Resourcepart() != "" {
			return usageErrorf("%s: --tenant %q: want a domain", name, t)
		}
		if !slices.Contains(cl.Tenants, d.String()) {
			cl.Tenants = append(cl.Tenants, d.String())
		}
	}
	if err := oauth.CheckActionScopes(cl.Scopes); err != nil || len(cl.Scopes) == 0 {
		return usageErrorf("%s: --scope %q: want some of certs:read certs:write certs:issue audit:read", name, c.String("scope"))
	}
	n := 0
	for _, f := range []string{"jwks-uri", "jwks-file", "secret"} {
		if c.IsSet(f) {
			n++
		}
	}
	if n != 1 {
		return usageErrorf("%s: give exactly one of --jwks-uri, --jwks-file and --secret", name)
	}
	var secret string
	switch {
	case cl.JWKSURI != "":
		if err := oauth.CheckJWKSURI(cl.JWKSURI); err != nil {
			return usageErrorf("%s: --jwks-uri: %v", name, err)
		}
	case c.IsSet("jwks-file"):
		b, err := os.ReadFile(c.String("jwks-file"))
		if err != nil {
			return usageErrorf("%s: --jwks-file: %v", name, err)
		}
		set, err := oauth.ParseJWKS(b)
		if err != nil || len(set.Keys) == 0 {
			return usageErrorf("%s: --jwks-file: %v", name, cmpErr(err, errors.New("no keys")))
		}
		cl.JWKS = b
	default:
		secret, cl.SecretHash = oauth.NewSecret()
	}
	st, done, err := e.openOAuthStore(c, false)
	if err != nil {
		return err
	}
	defer done()
	if err := st.AddClient(c.Context, cl); err != nil {
		if errors.Is(err, storage.ErrDuplicate) {
			return failf(c, "client %q exists; remove it first", cl.ID)
		}
		return failf(c, "%v", err)
	}
	fmt.Fprintf(e.stdout, "registered client %s (tenants %s; scopes %s)\n", cl.ID, strings.Join(cl.Tenants, " "), strings.Join(cl.Scopes, " "))
	if secret != "" {
		fmt.Fprintf(e.stdout, "client secret (shown only now; store it safely): %s\n", secret)
	}
	return nil
}

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// authText says how a client authenticates.
func authText(cl *storage.OAuthClient) string {
	switch {
	case cl.JWKSURI != "":
		return "jwks_uri " + cl.JWKSURI
	case cl.JWKS != nil:
		return "registered JWKS"
	case cl.SecretHash != "":
		return "secret"
	}
	return "none"
}

func (e *env) apiClientList(c *cli.Context) error {
	st, done, err := e.openOAuthStore(c, true)
	if err != nil {
		return err
	}
	defer done()
	l, err := st.ListClients(c.Context)
	if err != nil {
		return failf(c, "%v", err)
	}
	for _, cl := range l {
		fmt.Fprintf(e.stdout, "%s\ttenants=%s\tscopes=%s\tauth=%s\n", cl.ID, strings.Join(cl.Tenants, ","), strings.Join(cl.Scopes, ","), authText(cl))
	}
	return nil
}

func (e *env) apiClientShow(c *cli.Context) error {
	st, done, err := e.openOAuthStore(c, true)
	if err != nil {
		return err
	}
	defer done()
	cl, err := st.FindClient(c.Context, c.String("id"))
	if errors.Is(err, storage.ErrNotFound) {
		return failf(c, "no client %q", c.String("id"))
	}
	if err != nil {
		return failf(c, "%v", err)
	}
	fmt.Fprintf(e.stdout, "id:       %s\ntenants:  %s\nscopes:   %s\nauth:     %s\ncreated:  %s\n",
		cl.ID, strings.Join(cl.Tenants, " "), strings.Join(cl.Scopes, " "), authText(cl), cl.Created.Format("2006-01-02T15:04:05Z"))
	if cl.JWKS != nil {
		if set, err := oauth.ParseJWKS(cl.JWKS); err == nil {
			for _, k := range set.Keys {
				fmt.Fprintf(e.stdout, "key:      %s (%T)\n", k.KeyID, k.Key)
			}
		}
	}
	return nil
}

func (e *env) apiClientRemove(c *cli.Context) error {
	st, done, err := e.openOAuthStore(c, true)
	if err != nil {
		return err
	}
	defer done()
	if err := st.RemoveClient(c.Context, c.String("id")); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return failf(c, "no client %q", c.String("id"))
		}
		return failf(c, "%v", err)
	}
	fmt.Fprintf(e.stdout, "removed client %s; its access tokens are refused from now on\n", c.String("id"))
	return nil
}

func (e *env) apiKeysRotate(c *cli.Context) error {
	st, done, err := e.openOAuthStore(c, false)
	if err != nil {
		return err
	}
	defer done()
	k, err := oauth.RotateSigningKey(c.Context, st, e.now())
	if err != nil {
		return failf(c, "%v", err)
	}
	fmt.Fprintf(e.stdout, "new signing key %s (%s) is current; the previous one stays published until its tokens expire (keys retired over %v ago are deleted)\n", k.ID, k.Alg, oauth.MaxTokenLifetime+time.Minute)
	return nil
}

func (e *env) apiKeysList(c *cli.Context) error {
	st, done, err := e.openOAuthStore(c, true)
	if err != nil {
		return err
	}
	defer done()
	keys, err := st.SigningKeys(c.Context)
	if err != nil {
		return failf(c, "%v", err)
	}
	for _, k := range keys {
		state := "current"
		if !k.Retired.IsZero() {
			state = "retired " + k.Retired.Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(e.stdout, "%s\t%s\tcreated %s\t%s\n", k.ID, k.Alg, k.Created.Format("2006-01-02T15:04:05Z"), state)
	}
	return nil
}

// readClientKey reads a private key file for assertion and jwks.
func readClientKey(name, path string) (*oauth.ClientKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("%s: %v", name, err)
	}
	k, err := oauth.ParseClientKey(b)
	if err != nil {
		return nil, usageErrorf("%s: %s: %v", name, path, err)
	}
	return k, nil
}

func (e *env) apiAssertion(c *cli.Context) error {
	name := c.Command.HelpName
	k, err := readClientKey(name, c.String("key"))
	if err != nil {
		return err
	}
	if c.Duration("lifetime") <= 0 {
		return usageErrorf("%s: --lifetime must be positive", name)
	}
	a, err := k.SignAssertion(c.String("client-id"), strings.TrimRight(c.String("audience"), "/"), e.now(), c.Duration("lifetime"))
	if err != nil {
		return failf(c, "%v", err)
	}
	fmt.Fprintln(e.stdout, a)
	return nil
}

func (e *env) apiJWKS(c *cli.Context) error {
	name := c.Command.HelpName
	if !c.Args().Present() {
		return usageErrorf("%s: name at least one private key file", name)
	}
	var keys []*oauth.ClientKey
	for _, p := range c.Args().Slice() {
		k, err := readClientKey(name, p)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	b, err := oauth.PublicJWKS(keys...)
	if err != nil {
		return failf(c, "%v", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	return nil
}
