// A test SMSC: the npm `smpp` package in server mode (SMPP 3.4 over v5.0's compatible PDUs).
// Started by tests/sms_smpp.rs and bench/sms.sh. It checks the bind credentials, answers each
// submit_sm with a message id and, when a receipt was asked for, sends a deliver_sm delivery
// receipt. Every event is one JSON line on stdout (the test reads them).
//
// Environment:
//   SMSC_PORT       port to listen on (0: any free port; the first line says which)
//   SMSC_SYSTEM_ID  SMSC_PASSWORD  the only credentials accepted (else ESME_RINVPASWD)
//   SMSC_THROTTLE   answer the first N submit_sm with ESME_RTHROTTLED (default 0)
//   SMSC_REFUSE     a destination answered with ESME_RINVDSTADR
//   SMSC_RECEIPT    DELIVRD (default), UNDELIV or none
//   SMSC_QUIET      1: do not print each submit (the benchmark counts them instead)
'use strict';
const smpp = require('smpp');

const env = process.env;
const systemId = env.SMSC_SYSTEM_ID || 'portico';
const password = env.SMSC_PASSWORD || 'secret';
let throttle = parseInt(env.SMSC_THROTTLE || '0', 10);
const refuse = env.SMSC_REFUSE || '';
const receipt = env.SMSC_RECEIPT || 'DELIVRD';
const quiet = env.SMSC_QUIET === '1';
let nextId = 1;
let submits = 0;

function emit(event) {
  event.t = Date.now();
  process.stdout.write(JSON.stringify(event) + '\n');
}

function receiptText(id, stat, text) {
  const d = new Date().toISOString().replace(/[-:T]/g, '').slice(2, 12);
  return `id:${id} sub:001 dlvrd:${stat === 'DELIVRD' ? '001' : '000'} submit date:${d} ` +
    `done date:${d} stat:${stat} err:${stat === 'DELIVRD' ? '000' : '001'} text:${text.slice(0, 20)}`;
}

const server = smpp.createServer({ debug: false }, (session) => {
  let bound = false;
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      emit({ event: 'bind', ok: false, system_id: pdu.system_id });
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      setTimeout(() => session.close(), 50);
      return;
    }
    bound = true;
    emit({ event: 'bind', ok: true, system_id: pdu.system_id });
    session.send(pdu.response({ system_id: 'test-smsc' }));
  });
  session.on('enquire_link', (pdu) => {
    emit({ event: 'enquire_link' });
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('deliver_sm_resp', (pdu) => {
    if (!quiet) emit({ event: 'deliver_sm_resp', status: pdu.command_status });
  });
  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    if (throttle > 0) {
      throttle -= 1;
      emit({ event: 'throttled', to: pdu.destination_addr });
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }
    if (refuse && pdu.destination_addr === refuse) {
      emit({ event: 'refused', to: pdu.destination_addr });
      session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      return;
    }
    const id = 'm' + nextId++;
    submits += 1;
    const sm = pdu.short_message || {};
    const text = typeof sm === 'string' ? sm : (sm.message || '');
    let udh = null;
    for (const u of (sm.udh || [])) {
      // IEI 0x00: concatenated short message, 8-bit reference.
      if (u[0] === 0x00 && u.length >= 5) udh = { ref: u[2], total: u[3], seq: u[4] };
    }
    if (!quiet) {
      emit({
        event: 'submit', id, to: pdu.destination_addr, from: pdu.source_addr,
        source_ton: pdu.source_addr_ton, source_npi: pdu.source_addr_npi,
        dc: pdu.data_coding, esm: pdu.esm_class, registered: pdu.registered_delivery, udh, text,
      });
    } else if (submits % 1000 === 0) {
      emit({ event: 'count', submits });
    }
    session.send(pdu.response({ message_id: id }));
    if ((pdu.registered_delivery & 1) && receipt !== 'none') {
      setTimeout(() => {
        session.deliver_sm({
          source_addr: pdu.destination_addr,
          destination_addr: pdu.source_addr,
          esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT,
          short_message: receiptText(id, receipt, text),
          receipted_message_id: id,
          message_state: receipt === 'DELIVRD' ? 2 : 5,
        });
      }, 20);
    }
  });
});

server.listen(parseInt(env.SMSC_PORT || '0', 10), '127.0.0.1', () => {
  emit({ event: 'listening', port: server.address().port });
});
process.on('SIGTERM', () => process.exit(0));
