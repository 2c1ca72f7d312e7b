// The Lightning side of the payment tests: a NIP-47 (Nostr Wallet Connect) wallet service, the
// customer's NWC client, and nostr-tools' NIP-57 zap code, all independent of our Rust code.
//
// No NIP-47 wallet service with a real Lightning node ships in a package registry, so `serve`
// is a wallet-service double: the NIP-47 protocol (subscription, NIP-04/NIP-44 v2 encryption,
// the info event, responses) is Alby's `NWCWalletService` from @getalby/sdk, and the wallet
// behind it is a small in-memory Lightning ledger: invoices are real BOLT11 (the `bolt11`
// package, signed with this process's node key), and an invoice is paid only when one of its
// connections pays it with `pay_invoice` from its own balance. The owner of a paid invoice gets
// `payment_received` notifications (kind 23197, NIP-44 v2, and the legacy 23196, NIP-04).
//
//   node lightning.mjs serve RELAY_URL [CUSTOMER_MSAT]
//       prints one JSON line {"wallet_pubkey", "node_pubkey", "box": URI, "customer": URI,
//       "customer_secret"} and serves until stdin closes.
//   node lightning.mjs pay URI BOLT11
//       pays with Alby's `NWCClient`; prints {"preimage"} or {"error"}.
//   node lightning.mjs balance URI
//       prints {"balance"} (msat) through `NWCClient`.
//   node lightning.mjs zap-request SECRET_HEX RECIPIENT_HEX AMOUNT_MSAT RELAY_URL [EVENT_ID]
//       prints the zap request (kind 9734) nostr-tools' makeZapRequest makes, signed.
//   node lightning.mjs check-receipt RECEIPT_JSON
//       prints {"valid", "why", "sats", "zapper", "recipient"}: nostr-tools' verifyEvent,
//       validateZapRequest over the description tag, and the amount of the bolt11 tag.

import { createHash, randomBytes } from 'node:crypto';
import WebSocket from 'ws';

// The SDK bundles nostr-tools, which takes the global WebSocket when it loads (Node 20 has
// none), so the global is set before the SDK is imported.
globalThis.WebSocket = WebSocket;
const { NWCClient, NWCWalletService, NWCWalletServiceKeyPair } = await import('@getalby/sdk');
const { finalizeEvent, getPublicKey, verifyEvent } = await import('nostr-tools/pure');
const nip04 = await import('nostr-tools/nip04');
const nip44 = await import('nostr-tools/nip44');
const nip57 = await import('nostr-tools/nip57');
const { default: bolt11 } = await import('bolt11');

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const now = () => Math.floor(Date.now() / 1000);
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n');

async function serve(relay, customerMsat) {
    const walletSecret = hex(randomBytes(32));
    const walletPubkey = getPublicKey(Buffer.from(walletSecret, 'hex'));
    const nodeSecret = hex(randomBytes(32));
    const service = new NWCWalletService({ relayUrls: [relay] });
    const methods = ['get_info', 'get_balance', 'make_invoice', 'lookup_invoice', 'pay_invoice'];
    const notifications = ['payment_received', 'payment_sent'];

    // Accounts by client pubkey: balance in msat.
    const accounts = new Map();
    // Invoices by payment hash.
    const invoices = new Map();

    const transaction = (inv) => ({
        type: 'incoming',
        state: inv.state,
        invoice: inv.invoice,
        description: inv.description,
        description_hash: inv.description_hash,
        preimage: inv.state === 'settled' ? inv.preimage : undefined,
        payment_hash: inv.payment_hash,
        amount: inv.amount,
        fees_paid: 0,
        created_at: inv.created_at,
        expires_at: inv.expires_at,
        settled_at: inv.settled_at,
    });
    const fail = (code, message) => ({ result: undefined, error: { code, message } });

    async function notify(clientPubkey, type, tx) {
        const content = JSON.stringify({ notification_type: type, notification: tx });
        const key = nip44.getConversationKey(Buffer.from(walletSecret, 'hex'), clientPubkey);
        const events = [
            { kind: 23197, content: nip44.encrypt(content, key) },
            { kind: 23196, content: await nip04.encrypt(walletSecret, clientPubkey, content) },
        ];
        for (const { kind, content: payload } of events) {
            const event = finalizeEvent(
                { kind, created_at: now(), tags: [['p', clientPubkey]], content: payload },
                Buffer.from(walletSecret, 'hex'),
            );
            await Promise.any(service.pool.publish([relay], event)).catch(() => {});
        }
    }

    function handler(clientPubkey) {
        const account = accounts.get(clientPubkey);
        return {
            getInfo: async () => ({
                result: {
                    alias: 'nwc-double',
                    color: '#000000',
                    pubkey: getPublicKey(Buffer.from(nodeSecret, 'hex')),
                    network: 'mainnet',
                    block_height: 1,
                    block_hash: '00'.repeat(32),
                    methods,
                    notifications,
                },
                error: undefined,
            }),
            getBalance: async () => ({ result: { balance: account.balance }, error: undefined }),
            makeInvoice: async (params) => {
                const amount = params.amount;
                if (!Number.isSafeInteger(amount) || amount <= 0) {
                    return fail('OTHER', 'amount must be a positive whole number of msat');
                }
                const preimage = randomBytes(32);
                const paymentHash = sha256(preimage);
                const created = now();
                const expiry = Number.isSafeInteger(params.expiry) ? params.expiry : 3600;
                const tags = [
                    { tagName: 'payment_hash', data: paymentHash },
                    { tagName: 'payment_secret', data: hex(randomBytes(32)) },
                    { tagName: 'expire_time', data: expiry },
                ];
                if (params.description_hash) {
                    tags.push({ tagName: 'purpose_commit_hash', data: params.description_hash });
                } else {
                    tags.push({ tagName: 'description', data: params.description || '' });
                }
                const encoded = bolt11.encode({
                    millisatoshis: String(amount),
                    timestamp: created,
                    tags,
                });
                const invoice = bolt11.sign(encoded, nodeSecret).paymentRequest;
                const inv = {
                    owner: clientPubkey,
                    invoice,
                    description: params.description,
                    description_hash: params.description_hash,
                    preimage: hex(preimage),
                    payment_hash: paymentHash,
                    amount,
                    created_at: created,
                    expires_at: created + expiry,
                    state: 'pending',
                    settled_at: undefined,
                };
                invoices.set(paymentHash, inv);
                return { result: transaction(inv), error: undefined };
            },
            lookupInvoice: async (params) => {
                let hash = params.payment_hash;
                if (!hash && params.invoice) {
                    try {
                        hash = bolt11.decode(params.invoice).tagsObject.payment_hash;
                    } catch {
                        return fail('OTHER', 'invoice does not decode');
                    }
                }
                const inv = invoices.get(hash);
                if (!inv || inv.owner !== clientPubkey) {
                    return fail('NOT_FOUND', 'no such invoice');
                }
                if (inv.state === 'pending' && inv.expires_at < now()) {
                    inv.state = 'expired';
                }
                return { result: transaction(inv), error: undefined };
            },
            payInvoice: async (params) => {
                let decoded;
                try {
                    decoded = bolt11.decode(params.invoice);
                } catch {
                    return fail('PAYMENT_FAILED', 'invoice does not decode');
                }
                const inv = invoices.get(decoded.tagsObject.payment_hash);
                if (!inv) {
                    return fail('PAYMENT_FAILED', 'no route to this invoice');
                }
                if (inv.state !== 'pending' || inv.expires_at < now()) {
                    return fail('PAYMENT_FAILED', `invoice is ${inv.state}`);
                }
                if (account.balance < inv.amount) {
                    return fail('INSUFFICIENT_BALANCE', 'balance too low');
                }
                account.balance -= inv.amount;
                accounts.get(inv.owner).balance += inv.amount;
                inv.state = 'settled';
                inv.settled_at = now();
                const tx = transaction(inv);
                await notify(inv.owner, 'payment_received', tx);
                await notify(clientPubkey, 'payment_sent', { ...tx, type: 'outgoing' });
                return { result: { preimage: inv.preimage, fees_paid: 0 }, error: undefined };
            },
        };
    }

    const uris = {};
    for (const [name, balance] of [['box', 0], ['customer', customerMsat]]) {
        const clientSecret = hex(randomBytes(32));
        const clientPubkey = getPublicKey(Buffer.from(clientSecret, 'hex'));
        accounts.set(clientPubkey, { balance });
        const keypair = new NWCWalletServiceKeyPair(walletSecret, clientPubkey);
        await service.subscribe(keypair, handler(clientPubkey));
        uris[name] =
            `nostr+walletconnect://${walletPubkey}?relay=${encodeURIComponent(relay)}` +
            `&secret=${clientSecret}`;
    }
    await service.publishWalletServiceInfoEvent(walletSecret, methods, notifications);
    print({
        wallet_pubkey: walletPubkey,
        node_pubkey: getPublicKey(Buffer.from(nodeSecret, 'hex')),
        box: uris.box,
        customer: uris.customer,
    });
    process.stdin.resume();
    process.stdin.on('end', () => {
        service.close();
        process.exit(0);
    });
}

async function client(uri, work) {
    const nwc = new NWCClient({ nostrWalletConnectUrl: uri });
    try {
        print(await work(nwc));
    } catch (e) {
        print({ error: String(e && e.message ? e.message : e) });
    } finally {
        nwc.close();
    }
    process.exit(0);
}

const [mode, ...args] = process.argv.slice(2);
switch (mode) {
    case 'serve':
        await serve(args[0], Number(args[1] || 1_000_000_000));
        break;
    case 'pay':
        await client(args[0], async (nwc) => {
            const paid = await nwc.payInvoice({ invoice: args[1] });
            return { preimage: paid.preimage };
        });
        break;
    case 'balance':
        await client(args[0], async (nwc) => ({ balance: (await nwc.getBalance()).balance }));
        break;
    case 'zap-request': {
        const [secret, recipient, amount, relay, eventId] = args;
        const template = eventId
            ? nip57.makeZapRequest({
                  event: { id: eventId, pubkey: recipient, kind: 1, tags: [], content: '', created_at: now(), sig: '' },
                  amount: Number(amount),
                  relays: [relay],
                  comment: 'for the model',
              })
            : nip57.makeZapRequest({
                  pubkey: recipient,
                  amount: Number(amount),
                  relays: [relay],
                  comment: 'for the model',
              });
        print(finalizeEvent(template, Buffer.from(secret, 'hex')));
        break;
    }
    case 'check-receipt': {
        const receipt = JSON.parse(args[0]);
        const tag = (name) => receipt.tags.find((t) => t[0] === name)?.[1];
        const description = tag('description');
        const why = !verifyEvent(receipt)
            ? 'receipt signature'
            : receipt.kind !== 9735
              ? 'kind'
              : nip57.validateZapRequest(description || '');
        const request = description ? JSON.parse(description) : {};
        const bolt = tag('bolt11') || '';
        let hashMatches = false;
        try {
            hashMatches = bolt11.decode(bolt).tagsObject.purpose_commit_hash === sha256(description);
        } catch {}
        print({
            valid: why === null && hashMatches,
            why: why === null && !hashMatches ? 'description hash' : why,
            sats: nip57.getSatoshisAmountFromBolt11(bolt),
            zapper: request.pubkey,
            recipient: tag('p'),
            sender_tag: tag('P'),
        });
        break;
    }
    default:
        console.error('usage: node lightning.mjs serve|pay|balance|zap-request|check-receipt ...');
        process.exit(2);
}
