package component

import (
	"context"
	"encoding/xml"
	"slices"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enrollcmd"
)

// Enrollment is the part of *enroll.Service the component uses: the
// XEP-0050 commands' (enrollcmd) and the renewal sweep's (RunRenewal).
type Enrollment interface {
	enrollcmd.Enrollment
	Sweep(ctx context.Context) ([]enroll.Notice, error)
}

// EnableEnrollment makes the component offer the ad-hoc commands
// "Request a certificate" and "Fetch my latest certificate" (package
// enrollcmd), served by e, and lets RunRenewal renew certificates. Call it
// before Run.
func (c *Component) EnableEnrollment(e Enrollment) {
	c.enroll = e
	c.commands = &enrollcmd.Handler{
		Enroll:      e,
		MayManage:   c.certs.MayManage,
		StanzaError: c.asStanzaError,
		Now:         c.cfg.Now,
		Logger:      c.log,
	}
}

// handleCommand routes XEP-0050 commands addressed to the component by a
// user of a served domain to the enrollment commands. The request is
// decoded on the stream goroutine; the work that needs the store or a CA
// runs on a worker.
func (l *link) handleCommand(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	if iq.To.Localpart() != "" || iq.To.Resourcepart() != "" || c.commands == nil {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "")))
	}
	if _, ok := c.domains[iq.From.Domainpart()]; !ok || iq.From.Localpart() == "" {
		c.log.Info("refused an ad-hoc command from outside the served domains", "from", iq.From.String())
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Auth, stanza.Forbidden, "only accounts of the served domains may request certificates here")))
	}
	req, bad := enrollcmd.Decode(*start, t)
	if bad != nil {
		return send(t, c.commandIQ(iq, *bad))
	}
	auth := c.requestAuth(t, iq.From, iq.ID)
	reply, work := c.commands.Handle(iq.From, req, auth)
	if work == nil {
		return send(t, c.commandIQ(iq, reply))
	}
	err := l.dispatch(func(ctx context.Context) xml.TokenReader { return c.commandIQ(iq, work(ctx)) },
		func() xml.TokenReader { return c.errorIQ(iq, internalError()) })
	if err != nil {
		return send(t, c.errorIQ(iq, refusal(err)))
	}
	return nil
}

// commandIQ is the IQ that answers iq with a command's reply.
func (c *Component) commandIQ(iq stanza.IQ, r enrollcmd.Reply) xml.TokenReader {
	payload, isError := r.Payload()
	typ := stanza.ResultIQ
	if isError {
		typ = stanza.ErrorIQ
	}
	return stanza.IQ{ID: iq.ID, From: c.replyFrom(iq), To: iq.From, Type: typ}.Wrap(payload)
}

// commandItems lists the commands for disco#items on the commands node.
func (c *Component) commandItems() xml.TokenReader {
	var items []xml.TokenReader
	for _, node := range enrollcmd.Nodes {
		items = append(items, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: nsDiscoItems, Local: "item"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "jid"}, Value: c.cfg.JID.String()},
				{Name: xml.Name{Local: "node"}, Value: node},
				{Name: xml.Name{Local: "name"}, Value: enrollcmd.Name(node)},
			},
		}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(items...), queryStart(nsDiscoItems, enrollcmd.NSCommands))
}

// discoInfoFor is disco#info's answer for node, with the ad-hoc commands
// when enrollment is enabled.
func (c *Component) discoInfoFor(node string) (discoNode, bool) {
	if c.enroll != nil {
		switch node {
		case "":
			base := discoInfo[""]
			return discoNode{identities: base.identities, features: append(slices.Clone(base.features), enrollcmd.NSCommands)}, true
		case enrollcmd.NodeEnroll, enrollcmd.NodeLatest:
			return discoNode{
				identities: []discoIdentity{{Category: "automation", Type: "command-node", Name: enrollcmd.Name(node)}},
				features:   []string{enrollcmd.NSCommands, enrollcmd.NSDataForms},
			}, true
		}
	}
	n, ok := discoInfo[node]
	return n, ok
}

// textEl is <local xmlns=ns>text</local>.
func textEl(ns, local, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Space: ns, Local: local}})
}
