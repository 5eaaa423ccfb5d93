// Package enrollcmd implements the XEP-0050 (Ad-Hoc Commands) enrollment
// commands "Request a certificate" and "Fetch my latest certificate", with
// their XEP-0004 forms (docs/ENROLLMENT.md). It decides and answers: the
// component routes the <command/> IQs of users of its served domains to a
// Handler (Decode, then Handle on the stream goroutine), runs the work Handle
// returns on a worker and wraps each Reply in the IQ. Management rights come
// from the one decision, xep0257.Handler.MayManage; issuing from an
// enroll.Service.
//
// It imports enroll, storage (errors) and xep0257 (Auth), never component.
// A new enrollment command adds its node to Nodes and a case to Handle.
//
// mellium.im/xmpp/commands is used for its namespace only: its Note and
// Actions build elements without a namespace (inheriting the parent's), and
// its Command type serves the client side. mellium.im/xmpp/form is not used:
// it cannot make a form of type result, mishandles multi-line text ending in
// a newline, and its parser would read ambiguous submissions (a field twice,
// a boolean "TRUE") that checked refuses (dataform.go).
package enrollcmd
