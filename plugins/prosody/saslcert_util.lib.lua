-- saslcert_util: the names and pure helpers every part of mod_saslcert
-- shares (namespaces, certificate reading, SASL data and errors). No state,
-- no hooks, no options. Loaded with module:require("saslcert_util").

local st = require "util.stanza";
local encodings = require "util.encodings";
local set = require "util.set";

local base64_decode = encodings.base64.decode;

local xmlns_sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
local xmlns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";

local max_authzid = 3071; -- RFC 6120 §6.3.8 / RFC 7622: 3071 bytes for a JID
-- The longest SASL data read: the base64 of the longest authzid and a little
-- whitespace around it. Longer data is refused before anything else looks
-- at it (no pattern ever runs on more than this).
local max_sasl_data = 4 * math.ceil(max_authzid / 3) + 64;

-- The client certificate of a session, or nil.
local function peer_certificate(session)
	local conn = session.conn;
	if not conn or not conn.socket then return nil; end
	local ok, cert = pcall(function ()
		local sock = conn:socket();
		if not sock or not sock.getpeercertificate then return nil; end
		return sock:getpeercertificate();
	end);
	if ok then return cert; end
	return nil;
end

-- base64 of the DER: the PEM body without armour and whitespace (LuaSec 1.2
-- has no der()). The certificate is the client's: plain searches and one
-- single-class gsub, linear in its size.
local function cert_der_base64(cert)
	local pem = cert:pem();
	if not pem then return nil; end
	local body = pem:find("\n", 1, true);
	local armour_end = pem:find("-----END", 1, true);
	if not body or not armour_end or armour_end <= body then return nil; end
	local b64 = pem:sub(body + 1, armour_end - 1):gsub("%s+", "");
	if b64 == "" then return nil; end
	return b64;
end

local function cert_fingerprint(cert)
	local hex = cert:digest("sha256");
	if not hex then return nil; end
	return "sha256:" .. hex:lower():gsub(":", "");
end

local function sasl_failure(condition, text)
	local reply = st.stanza("failure", { xmlns = xmlns_sasl }):tag(condition):up();
	if text then
		reply:text_tag("text", text);
	end
	return reply;
end

local function is_space(byte)
	return byte == 32 or (byte >= 9 and byte <= 13);
end

-- Decodes SASL data: nil/"" (empty element) and "=" are the empty string;
-- otherwise strict base64 with optional whitespace around it. Returns nil
-- and the SASL condition when the data is longer than max_sasl_data
-- (malformed-request, checked first) or badly encoded (incorrect-encoding).
-- Linear in the input: whitespace is trimmed byte by byte, and the one
-- pattern is anchored with a single repetition.
local function decode_sasl_data(text)
	if text == nil then return ""; end
	if #text > max_sasl_data then return nil, "malformed-request"; end
	local first, last = 1, #text;
	while first <= last and is_space(text:byte(first)) do first = first + 1; end
	while last >= first and is_space(text:byte(last)) do last = last - 1; end
	text = text:sub(first, last);
	if text == "" or text == "=" then return ""; end
	if #text % 4 ~= 0 or not text:match("^[A-Za-z0-9+/]+=?=?$") then
		return nil, "incorrect-encoding";
	end
	local decoded = base64_decode(text);
	if decoded == nil then return nil, "incorrect-encoding"; end
	return decoded;
end

-- Finds the SASL condition in an IQ error from the component.
local function error_from_reply(reply_stanza, err)
	local stanza = reply_stanza or (err and err.context and err.context.stanza);
	local err_type, text, sasl_cond;
	if stanza then
		local error_tag = stanza:get_child("error");
		if error_tag then
			err_type = error_tag.attr.type;
			text = error_tag:get_child_text("text", xmlns_stanzas);
			local sasl_child = error_tag:get_child(nil, xmlns_sasl);
			sasl_cond = sasl_child and sasl_child.name;
		end
	elseif err then
		err_type, text = err.type, err.text;
	end
	return err_type, sasl_cond, text;
end

local function still_unauthenticated(session)
	return not session.destroyed and session.type == "c2s_unauthed" and not session.username and session.conn ~= nil;
end

return {
	xmlns_sasl = xmlns_sasl;
	xmlns_plugin = "urn:x-saslcert:plugin:0";
	xmlns_stanzas = xmlns_stanzas;
	xmlns_saslcert = "urn:xmpp:saslcert:1"; -- XEP-0257
	max_authzid = max_authzid;
	revoked_text = "This client certificate has been revoked.";
	-- SASL conditions (RFC 6120 §6.5) the component may ask us to send.
	sasl_conditions = set.new({
		"aborted", "account-disabled", "credentials-expired", "encryption-required",
		"incorrect-encoding", "invalid-authzid", "invalid-mechanism", "malformed-request",
		"mechanism-too-weak", "not-authorized", "temporary-auth-failure",
	});
	weak_keys = { __mode = "k" };
	peer_certificate = peer_certificate;
	cert_der_base64 = cert_der_base64;
	cert_fingerprint = cert_fingerprint;
	sasl_failure = sasl_failure;
	decode_sasl_data = decode_sasl_data;
	error_from_reply = error_from_reply;
	still_unauthenticated = still_unauthenticated;
};
