// The widget's own texts in Russian and English; the language is the visitor's browser's.

export type Lang = 'ru' | 'en';

export function pickLang(languages: readonly string[]): Lang {
  for (const l of languages) {
    const base = l.toLowerCase().split('-')[0];
    if (base === 'ru') return 'ru';
    if (base === 'en') return 'en';
  }
  return 'en';
}

const ru = {
  open: 'Открыть чат',
  close: 'Закрыть чат',
  placeholder: 'Напишите сообщение…',
  send: 'Отправить',
  typing: 'печатает…',
  name: 'Имя',
  email: 'Эл. почта',
  phone: 'Телефон',
  message: 'Сообщение',
  start: 'Начать чат',
  leave: 'Отправить',
  offlineSent: 'Спасибо! Мы ответим, как только появимся.',
  contactNeeded: 'Укажите e-mail или телефон',
  failed: 'Не отправлено. Попробуйте ещё раз.',
  alsoIn: 'Или напишите нам:',
  callMe: 'Перезвоните мне',
  callNow: 'Позвонить',
  calling: 'Звоним вам, ожидайте звонка.',
  unread: (n: number) => `Непрочитанных сообщений: ${n}`,
  attach: 'Прикрепить файл',
  uploading: 'загружается…',
  tooLarge: (mb: string) => `Файл больше ${mb} МБ`,
};

const en: typeof ru = {
  open: 'Open chat',
  close: 'Close chat',
  placeholder: 'Type a message…',
  send: 'Send',
  typing: 'typing…',
  name: 'Name',
  email: 'E-mail',
  phone: 'Phone',
  message: 'Message',
  start: 'Start chat',
  leave: 'Send',
  offlineSent: 'Thank you! We will get back to you soon.',
  contactNeeded: 'Leave an e-mail or a phone number',
  failed: 'Not sent. Please try again.',
  alsoIn: 'Or write to us in:',
  callMe: 'Call me back',
  callNow: 'Call me',
  calling: 'We are calling you now.',
  unread: (n: number) => `Unread messages: ${n}`,
  attach: 'Attach a file',
  uploading: 'uploading…',
  tooLarge: (mb: string) => `The file is over ${mb} MB`,
};

export type Texts = typeof ru;
export const texts: Record<Lang, Texts> = { ru, en };
