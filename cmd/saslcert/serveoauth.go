package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"

	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
)

// oauthSettings are serve's OAuth2 settings (used with --http-listen).
type oauthSettings struct {
	tokenLifetime time.Duration
	// extIssuer and extJWKS configure resource-server mode: access tokens
	// of an external authorization server are accepted too.
	extIssuer, extJWKS string
}

// oauthFlags are serve's OAuth2 flags.
func oauthFlags() []cli.Flag {
	return []cli.Flag{
		altsrc.NewDurationFlag(&cli.DurationFlag{Name: "oauth-token-lifetime", Value: oauth.DefaultTokenLifetime, Usage: "lifetime of the access tokens the OAuth2 server issues (at most 1h)", EnvVars: []string{"SASLCERT_OAUTH_TOKEN_LIFETIME"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "oauth-external-issuer", Usage: "also accept access tokens (RFC 9068 JWTs with saslcert's scopes) of this external issuer (with --oauth-external-jwks-url)", EnvVars: []string{"SASLCERT_OAUTH_EXTERNAL_ISSUER"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "oauth-external-jwks-url", Usage: "the external issuer's JWKS URL (https)", EnvVars: []string{"SASLCERT_OAUTH_EXTERNAL_JWKS_URL"}}),
	}
}

// oauthSettingsFrom reads and checks the OAuth2 flags.
func oauthSettingsFrom(c *cli.Context) (oauthSettings, error) {
	o := oauthSettings{tokenLifetime: c.Duration("oauth-token-lifetime"), extIssuer: c.String("oauth-external-issuer"), extJWKS: c.String("oauth-external-jwks-url")}
	if o.tokenLifetime <= 0 || o.tokenLifetime > oauth.MaxTokenLifetime {
		return o, fmt.Errorf("--oauth-token-lifetime %v: want more than 0 and at most %v", o.tokenLifetime, oauth.MaxTokenLifetime)
	}
	if (o.extIssuer == "") != (o.extJWKS == "") {
		return o, errors.New("--oauth-external-issuer and --oauth-external-jwks-url go together")
	}
	if o.extJWKS != "" {
		if err := oauth.CheckJWKSURI(o.extJWKS); err != nil {
			return o, fmt.Errorf("--oauth-external-jwks-url: %w", err)
		}
	}
	return o, nil
}

// setupOAuth adds the OAuth2 authorization server's routes to svc (with an
// HTTP listener) and returns the Authenticator of access tokens: saslcert's
// own and, if configured, the external issuer's. Without a listener it
// does nothing and returns nil.
func setupOAuth(ctx context.Context, e *env, sc serveConfig, db storage.Store, svc *server.Service) (oauth.Authenticator, error) {
	if !sc.http.Enabled() {
		return nil, nil
	}
	oas, ok := db.(storage.OAuthStore)
	if !ok {
		return nil, errors.New("the store keeps no OAuth2 state; the HTTP API needs one that does")
	}
	issuer, err := server.PublicBase(sc.http.PublicURL)
	if err != nil {
		return nil, err
	}
	srv, err := oauth.New(oauth.Config{
		Issuer: issuer, Store: oas, TokenLifetime: sc.oauth.tokenLifetime, Tenants: sc.comp.ServerDomains,
		Observer: svc.Metrics, Now: e.now, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	if err := srv.EnsureSigningKey(ctx); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	svc.AddRoutes(srv)
	vs := []*oauth.Verifier{srv.Verifier()}
	if sc.oauth.extIssuer != "" {
		ext, err := oauth.NewExternalVerifier(oauth.ExternalConfig{
			Issuer: sc.oauth.extIssuer, JWKSURL: sc.oauth.extJWKS, Audience: issuer, Tenants: sc.comp.ServerDomains, Now: e.now,
		})
		if err != nil {
			return nil, err
		}
		vs = append(vs, ext)
	}
	e.log.Info("oauth enabled", "issuer", issuer, "token_lifetime", sc.oauth.tokenLifetime.String(), "external_issuer", sc.oauth.extIssuer)
	return oauth.Verifiers(vs...), nil
}
