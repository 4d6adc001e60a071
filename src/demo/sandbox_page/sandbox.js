// The sandbox page: writes as a customer through the demo's fake providers and shows the
// business's answers as the customer sees them. Text is always inserted as text.
'use strict';

const MESSAGES = {
  en: {
    title: 'Write as a customer',
    lead: 'Messages go through the provider’s test double exactly as a real customer’s do, and appear in the omnihub inbox. Replies sent from the inbox show up here.',
    channel: 'Channel',
    customer: 'Your name as a customer',
    message: 'Message',
    send: 'Send',
    sent: 'Sent.',
    failed: 'Not delivered: ',
    telegram: 'Telegram', whatsapp: 'WhatsApp', vk: 'VK', viber: 'Viber', max: 'MAX', email: 'E-mail',
  },
  ru: {
    title: 'Написать как клиент',
    lead: 'Сообщения идут через тестовый двойник провайдера точно так же, как от настоящего клиента, и появляются во входящих omnihub. Ответы из входящих видны здесь.',
    channel: 'Канал',
    customer: 'Ваше имя как клиента',
    message: 'Сообщение',
    send: 'Отправить',
    sent: 'Отправлено.',
    failed: 'Не доставлено: ',
    telegram: 'Telegram', whatsapp: 'WhatsApp', vk: 'VK', viber: 'Viber', max: 'MAX', email: 'Почта',
  },
};
const lang = (navigator.languages || [navigator.language]).some((l) => l.toLowerCase().startsWith('ru')) ? 'ru' : 'en';
const t = (key) => MESSAGES[lang][key] ?? key;

/** What this page showed per provider and customer: the lines, and replies already shown. */
const transcripts = new Map();

function key() {
  return `${document.getElementById('provider').value}\u0000${document.getElementById('customer').value.trim()}`;
}

function transcript() {
  const k = key();
  if (!transcripts.has(k)) transcripts.set(k, { lines: [], repliesShown: 0 });
  return transcripts.get(k);
}

function render() {
  const chat = document.getElementById('chat');
  chat.replaceChildren(
    ...transcript().lines.map(({ from, text }) => {
      const li = document.createElement('li');
      li.className = from;
      li.textContent = text;
      return li;
    }),
  );
}

async function poll() {
  const provider = document.getElementById('provider').value;
  const customer = document.getElementById('customer').value.trim();
  if (!provider || !customer) return;
  const query = new URLSearchParams({ provider, customer });
  const r = await fetch(`/api/replies?${query}`).catch(() => null);
  if (!r || !r.ok) return;
  const { replies } = await r.json();
  const shown = transcripts.get(`${provider}\u0000${customer}`) ?? transcript();
  if (replies.length > shown.repliesShown) {
    for (const text of replies.slice(shown.repliesShown)) shown.lines.push({ from: 'business', text });
    shown.repliesShown = replies.length;
    render();
  }
}

async function send(event) {
  event.preventDefault();
  const status = document.getElementById('status');
  const provider = document.getElementById('provider').value;
  const customer = document.getElementById('customer').value.trim();
  const text = document.getElementById('text').value.trim();
  if (!customer || !text) return;
  const r = await fetch('/api/say', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ provider, customer, text }),
  }).catch(() => null);
  if (r && r.ok) {
    transcript().lines.push({ from: 'customer', text });
    document.getElementById('text').value = '';
    status.textContent = '';
    render();
  } else {
    status.textContent = t('failed') + (r ? (await r.json().catch(() => ({}))).error ?? r.status : '—');
  }
}

async function start() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
  document.title = t('title');
  const providers = await (await fetch('/api/providers')).json();
  const select = document.getElementById('provider');
  for (const p of providers) {
    const option = document.createElement('option');
    option.value = p;
    option.textContent = t(p);
    select.append(option);
  }
  document.getElementById('customer').value = lang === 'ru' ? 'Тестовый клиент' : 'Test customer';
  select.addEventListener('change', render);
  document.getElementById('customer').addEventListener('change', render);
  document.getElementById('say').addEventListener('submit', send);
  render();
  setInterval(poll, 1000);
}

start();
