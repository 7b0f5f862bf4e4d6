-- imp2.lua: Wireshark/tshark dissector for the imp2 netlink protocol.
--
-- Usage:  tshark -X lua_script:tools/wireshark/imp2.lua -r trace.pcapng.zst -V
--         or copy into ~/.local/lib/wireshark/plugins/ for the GUI.
--
-- Fields: imp2.type, imp2.len, imp2.seq, imp2.pid, imp2.src, imp2.dest,
-- imp2.tstamp, imp2.ifindex, imp2.icmp_type, imp2.icmp_code, imp2.echo_id,
-- imp2.echo_seq, imp2.flags (imp2.flags.icmp), imp2.ip_len, imp2.reserved,
-- imp2.rmem_alloc, imp2.rcvbuf, imp2.truesize, imp2.drop_rmem (the queue
-- extension of module 2.1, payload bytes 32-47), imp2.extension, imp2.payload, imp2.stats.* (IMP2_STATS replies).
-- Message types: IMP2_U_PID 0, IMP2_K_MSG 1, IMP2_CLOSE 2 (the original
-- protocol), IMP2_GET_STATS 0x10, IMP2_STATS 0x11.
--
-- The wire format is defined in kmod/imp2_uapi.h.  src, dest, icmp_id and
-- icmp_seq are in network byte order; the module's own fields are in the
-- recording host's byte order, guessed from nlmsg_len like Wireshark's
-- netlink dissector does.
--
-- How it hooks in: the dissector is registered in the "netlink.protocol"
-- table for family 31, but Wireshark (checked on 4.0) calls that table only
-- for message types >= NLMSG_MIN_TYPE (0x10): it reaches IMP2_GET_STATS and
-- IMP2_STATS, never the original types 0-2.  So the script also wraps the
-- LINKTYPE_NETLINK dissector: it runs Wireshark's own netlink dissector first
-- (the netlink.* fields stay) and then adds the imp2 tree for frames of the
-- imp2 family that the table did not reach.  (A frame batching types below
-- and above 0x10 would show only the latter; the module sends one message
-- per skb.)

local imp2 = Proto("imp2", "imp2 netlink protocol")

imp2.prefs.family = Pref.uint("Netlink family", 31,
	"Netlink unit (family) of the imp2 module (NL_IMP2, 31 unless loaded with another unit)")

local msg_types = {
	[0] = "IMP2_U_PID",
	[1] = "IMP2_K_MSG",
	[2] = "IMP2_CLOSE",
	[0x10] = "IMP2_GET_STATS",
	[0x11] = "IMP2_STATS",
}

local icmp_types = {
	[0] = "Echo reply", [3] = "Destination unreachable", [5] = "Redirect",
	[8] = "Echo request", [11] = "Time exceeded", [12] = "Parameter problem",
	[13] = "Timestamp", [14] = "Timestamp reply",
}

local F = {
	type      = ProtoField.uint16("imp2.type", "Message type", base.DEC, msg_types),
	len       = ProtoField.uint32("imp2.len", "Length", base.DEC),
	nlflags   = ProtoField.uint16("imp2.nlflags", "Netlink flags", base.HEX),
	seq       = ProtoField.uint32("imp2.seq", "Sequence", base.DEC),
	pid       = ProtoField.uint32("imp2.pid", "Port ID", base.DEC),
	src       = ProtoField.ipv4("imp2.src", "Source"),
	dest      = ProtoField.ipv4("imp2.dest", "Destination"),
	tstamp    = ProtoField.uint64("imp2.tstamp", "Unicast time (CLOCK_MONOTONIC, ns)", base.DEC),
	ifindex   = ProtoField.int32("imp2.ifindex", "Input interface index", base.DEC),
	icmp_type = ProtoField.uint8("imp2.icmp_type", "ICMP type", base.DEC, icmp_types),
	icmp_code = ProtoField.uint8("imp2.icmp_code", "ICMP code", base.DEC),
	echo_id   = ProtoField.uint16("imp2.echo_id", "ICMP echo identifier", base.DEC_HEX),
	echo_seq  = ProtoField.uint16("imp2.echo_seq", "ICMP echo sequence number", base.DEC),
	flags     = ProtoField.uint16("imp2.flags", "Event flags", base.HEX),
	flag_icmp = ProtoField.bool("imp2.flags.icmp", "ICMP fields valid", 16, nil, 0x0001),
	ip_len    = ProtoField.uint16("imp2.ip_len", "IPv4 total length", base.DEC),
	reserved  = ProtoField.uint16("imp2.reserved", "Reserved", base.HEX),
	rmem_alloc = ProtoField.uint32("imp2.rmem_alloc", "Queued bytes with this event (sk_rmem_alloc)", base.DEC),
	rcvbuf     = ProtoField.uint32("imp2.rcvbuf", "Receive buffer (sk_rcvbuf)", base.DEC),
	truesize   = ProtoField.uint32("imp2.truesize", "Event truesize", base.DEC),
	drop_rmem  = ProtoField.uint32("imp2.drop_rmem", "sk_rmem_alloc at the refusal opening the sequence gap", base.DEC),
	extension = ProtoField.bytes("imp2.extension", "Later extension"),
	payload   = ProtoField.bytes("imp2.payload", "Payload"),

	st_events       = ProtoField.uint64("imp2.stats.events", "Events seen by the hook", base.DEC),
	st_unicast_ok   = ProtoField.uint64("imp2.stats.unicast_ok", "Unicasts queued", base.DEC),
	st_eagain       = ProtoField.uint64("imp2.stats.eagain", "EAGAIN (queue full)", base.DEC),
	st_econnrefused = ProtoField.uint64("imp2.stats.econnrefused", "ECONNREFUSED (socket gone)", base.DEC),
	st_enomem       = ProtoField.uint64("imp2.stats.enomem", "ENOMEM", base.DEC),
	st_other_err    = ProtoField.uint64("imp2.stats.other_err", "Other errors", base.DEC),
	st_consumers    = ProtoField.uint32("imp2.stats.consumers", "Consumers", base.DEC),
	st_self_reg     = ProtoField.uint32("imp2.stats.self_registered", "Asker registered", base.DEC),
	st_self_sent    = ProtoField.uint64("imp2.stats.self_sent", "Events queued to the asker", base.DEC),
	st_self_dropped = ProtoField.uint64("imp2.stats.self_dropped", "Events the asker missed", base.DEC),
	st_self_seq     = ProtoField.uint32("imp2.stats.self_last_seq", "Last sequence given to the asker", base.DEC),
}
imp2.fields = F

local ef_short = ProtoExpert.new("imp2.short", "imp2 message too short", expert.group.MALFORMED, expert.severity.ERROR)
imp2.experts = { ef_short }

-- add adds a host-order field (little- or big-endian as guessed).
local function add(tree, le, field, range)
	if le then
		return tree:add_le(field, range)
	end
	return tree:add(field, range)
end

local function dissect_event(tvb, pinfo, tree, le, off, plen)
	if plen < 8 then
		tree:add_proto_expert_info(ef_short, "event payload shorter than struct packet_info (8 bytes)")
		return
	end
	tree:add(F.src, tvb(off, 4))
	tree:add(F.dest, tvb(off + 4, 4))
	local info = string.format(" %s → %s", tostring(tvb(off, 4):ipv4()), tostring(tvb(off + 4, 4):ipv4()))
	if plen >= 32 then
		add(tree, le, F.tstamp, tvb(off + 8, 8))
		add(tree, le, F.ifindex, tvb(off + 16, 4))
		tree:add(F.icmp_type, tvb(off + 20, 1))
		tree:add(F.icmp_code, tvb(off + 21, 1))
		tree:add(F.echo_id, tvb(off + 22, 2))
		tree:add(F.echo_seq, tvb(off + 24, 2))
		local ft = add(tree, le, F.flags, tvb(off + 26, 2))
		add(ft, le, F.flag_icmp, tvb(off + 26, 2))
		add(tree, le, F.ip_len, tvb(off + 28, 2))
		add(tree, le, F.reserved, tvb(off + 30, 2))
		local ext = 32
		if plen >= 48 then
			add(tree, le, F.rmem_alloc, tvb(off + 32, 4))
			add(tree, le, F.rcvbuf, tvb(off + 36, 4))
			add(tree, le, F.truesize, tvb(off + 40, 4))
			add(tree, le, F.drop_rmem, tvb(off + 44, 4))
			ext = 48
		end
		if plen > ext then
			tree:add(F.extension, tvb(off + ext, plen - ext))
		end
		local t = tvb(off + 20, 1):uint()
		info = info .. string.format(" %s id=%d seq=%d", icmp_types[t] or ("ICMP type " .. t),
			tvb(off + 22, 2):uint(), tvb(off + 24, 2):uint())
	else
		tree:append_text(" (legacy)")
	end
	return info
end

local function dissect_stats(tvb, tree, le, off, plen)
	if plen < 80 then
		tree:add_proto_expert_info(ef_short, "stats payload shorter than struct imp2_stats (80 bytes)")
		return
	end
	add(tree, le, F.st_events, tvb(off, 8))
	add(tree, le, F.st_unicast_ok, tvb(off + 8, 8))
	add(tree, le, F.st_eagain, tvb(off + 16, 8))
	add(tree, le, F.st_econnrefused, tvb(off + 24, 8))
	add(tree, le, F.st_enomem, tvb(off + 32, 8))
	add(tree, le, F.st_other_err, tvb(off + 40, 8))
	add(tree, le, F.st_consumers, tvb(off + 48, 4))
	add(tree, le, F.st_self_reg, tvb(off + 52, 4))
	add(tree, le, F.st_self_sent, tvb(off + 56, 8))
	add(tree, le, F.st_self_dropped, tvb(off + 64, 8))
	add(tree, le, F.st_self_seq, tvb(off + 72, 4))
end

-- dissect_messages walks the netlink messages in tvb from off and returns
-- the number of bytes consumed.
local function dissect_messages(tvb, pinfo, root, off)
	local total = tvb:reported_length_remaining(off)
	if total < 16 then
		return 0
	end
	-- Byte order: take the one whose nlmsg_len is closer to what is there.
	local len_le, len_be = tvb(off, 4):le_uint(), tvb(off, 4):uint()
	local le = math.abs(len_le - total) <= math.abs(len_be - total)
	local infos = {}
	local start = off
	while tvb:reported_length_remaining(off) >= 16 do
		local mlen = le and tvb(off, 4):le_uint() or tvb(off, 4):uint()
		local avail = tvb:reported_length_remaining(off)
		local shown = math.min(math.max(mlen, 16), avail)
		local mtype = le and tvb(off + 4, 2):le_uint() or tvb(off + 4, 2):uint()
		local name = msg_types[mtype] or string.format("type %d", mtype)
		local tree = root:add(imp2, tvb(off, shown))
		tree:append_text(", " .. name)
		add(tree, le, F.len, tvb(off, 4))
		add(tree, le, F.type, tvb(off + 4, 2))
		add(tree, le, F.nlflags, tvb(off + 6, 2))
		add(tree, le, F.seq, tvb(off + 8, 4))
		add(tree, le, F.pid, tvb(off + 12, 4))
		local seq = le and tvb(off + 8, 4):le_uint() or tvb(off + 8, 4):uint()
		local info = name
		if mlen < 16 or mlen > avail then
			tree:add_proto_expert_info(ef_short, string.format("nlmsg_len %d with %d bytes present", mlen, avail))
			table.insert(infos, info)
			off = off + avail
			break
		end
		local plen = mlen - 16
		if mtype == 1 then
			info = info .. " seq=" .. seq .. (dissect_event(tvb, pinfo, tree, le, off + 16, plen) or "")
		elseif mtype == 0x11 then
			dissect_stats(tvb, tree, le, off + 16, plen)
		elseif plen > 0 then
			tree:add(F.payload, tvb(off + 16, plen))
		end
		table.insert(infos, info)
		off = off + bit.band(mlen + 3, bit.bnot(3))
	end
	pinfo.cols.protocol = "IMP2"
	pinfo.cols.info = table.concat(infos, "; ")
	return off - start
end

-- Entry 1: the netlink.protocol table (message types >= 0x10 only, on the
-- Wireshark versions checked). tvb is one message, header included.
local handled = false
function imp2.dissector(tvb, pinfo, tree)
	handled = true
	return dissect_messages(tvb, pinfo, tree, 0)
end
DissectorTable.get("netlink.protocol"):add(31, imp2)

-- Entry 2: wrap the LINKTYPE_NETLINK dissector for imp2 types 0-4.
local netlink = Dissector.get("netlink")
local wrapper = Proto("imp2_netlink", "imp2 netlink wrapper")
function wrapper.dissector(tvb, pinfo, tree)
	handled = false
	-- IMP2_CLOSE is type 2, NLMSG_ERROR to Wireshark, which then expects an
	-- error code and throws "Malformed" on the bare header; catch that so
	-- the imp2 tree is still added.
	local ok, n = pcall(Dissector.call, netlink, tvb, pinfo, tree)
	if not ok then
		n = tvb:len()
	end
	if not handled and tvb:len() >= 32 and tvb(14, 2):uint() == imp2.prefs.family then
		dissect_messages(tvb, pinfo, tree, 16)
	end
	return n
end
local encap = (wtap_encaps and wtap_encaps.NETLINK) or (wtap and wtap.NETLINK) or 158
DissectorTable.get("wtap_encap"):add(encap, wrapper)

-- A family preference other than 31 also needs the table entry.
function imp2.prefs_changed()
	if imp2.prefs.family ~= 31 then
		DissectorTable.get("netlink.protocol"):add(imp2.prefs.family, imp2)
	end
end
