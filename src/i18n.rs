//! Every user-visible text omnihub renders, in the two languages it ships (Russian and English),
//! and the choice of language.
//!
//! - `Lang` is negotiated per request from `Accept-Language` for API answers (English when the
//!   request names neither shipped language: integrators read English), and taken from the
//!   stored user locale for e-mails to a known account.
//! - `Msg` is the catalog: one variant per message, its arguments typed, both translations side
//!   by side. The `catalog!` macro makes both languages format every argument, so a translation
//!   cannot be missing or drop an argument without failing to compile; the unit tests check
//!   that Russian texts are Russian and English texts are not.
//! - Argument values are quoted verbatim: field names (`display_name`), API enum values and
//!   third-party parse messages (serde's "unknown field `x`") stay as the client sent or expects
//!   them, inside a translated sentence.
//! - `Mail` pairs a subject with a body. A mail to someone without a known locale (an invitee
//!   has no account yet) carries both languages, Russian first: the recipient's language is
//!   unknown, and the service's users are Russian-speaking businesses first.

use std::fmt;

use chrono::{DateTime, Utc};
use omnihub_core::ChannelId;
use omnihub_core::validate::Invalid;

/// A language omnihub ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    Ru,
    En,
}

/// More ranges than any browser sends; the rest of a longer header is ignored so a hostile one
/// costs nothing.
const MAX_LANGUAGE_RANGES: usize = 32;

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Ru, Lang::En];

    /// The API's language when a request names neither shipped language.
    pub const API_DEFAULT: Lang = Lang::En;

    /// The BCP 47 primary language subtag, as stored in `users.locale`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// The language of a tag by its primary subtag: `ru`, `ru-RU` and (leniently, as some
    /// clients write it) `ru_RU` are Russian.
    fn of_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next().unwrap_or_default();
        Lang::ALL
            .into_iter()
            .find(|l| primary.eq_ignore_ascii_case(l.code()))
    }

    /// A stored user locale; `None` when it names no shipped language.
    pub fn from_locale(locale: &str) -> Option<Lang> {
        Lang::of_tag(locale.trim())
    }

    /// The best shipped language for an `Accept-Language` value (RFC 9110 §12.5.4): the highest
    /// q-value wins, a tie goes to the range listed first, `*` stands for any language not
    /// named, `q=0` refuses a language. Malformed ranges are skipped; when nothing acceptable
    /// is left, `API_DEFAULT`.
    pub fn from_accept_language(header: &str) -> Lang {
        // Per language: (quality in thousandths, position of the range that gave it).
        let mut named: [Option<(u16, usize)>; 2] = [None, None];
        let mut any: Option<(u16, usize)> = None;
        for (pos, item) in header.split(',').take(MAX_LANGUAGE_RANGES).enumerate() {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or_default().trim();
            let Some(q) = quality(parts) else { continue };
            if range == "*" {
                any = better(any, (q, pos));
            } else if is_language_range(range)
                && let Some(lang) = Lang::of_tag(range)
            {
                // Several ranges of one language (`en-GB;q=0.8, en;q=0.5`): the best counts.
                let slot = &mut named[lang as usize];
                *slot = better(*slot, (q, pos));
            }
        }
        // The default first, so a tie that only `*` decides goes to it.
        let candidates = [Lang::API_DEFAULT]
            .into_iter()
            .chain(Lang::ALL.into_iter().filter(|l| *l != Lang::API_DEFAULT));
        let mut best: Option<(Lang, (u16, usize))> = None;
        for lang in candidates {
            // A language named in the header is judged by that alone, even when `q=0`.
            let Some(score @ (q, pos)) = named[lang as usize].or(any) else {
                continue;
            };
            let wins = match best {
                None => true,
                Some((_, (bq, bpos))) => q > bq || (q == bq && pos < bpos),
            };
            if q > 0 && wins {
                best = Some((lang, score));
            }
        }
        best.map_or(Lang::API_DEFAULT, |(lang, _)| lang)
    }
}

/// The higher quality; on a tie the earlier range.
fn better(old: Option<(u16, usize)>, new: (u16, usize)) -> Option<(u16, usize)> {
    match old {
        Some(o) if o.0 >= new.0 => Some(o),
        _ => Some(new),
    }
}

/// `1*8ALPHA *("-" 1*8alphanum)`, allowing `_` for the clients that write `ru_RU`.
fn is_language_range(range: &str) -> bool {
    let mut subtags = range.split(['-', '_']);
    let primary = subtags.next().unwrap_or_default();
    let ok = |s: &str, f: fn(&u8) -> bool| (1..=8).contains(&s.len()) && s.bytes().all(|b| f(&b));
    ok(primary, u8::is_ascii_alphabetic) && subtags.all(|s| ok(s, u8::is_ascii_alphanumeric))
}

/// The weight of a range from its parameters: 1000 without `q`, `None` when `q` is malformed.
fn quality<'a>(params: impl Iterator<Item = &'a str>) -> Option<u16> {
    let mut q = 1000;
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("q") {
            continue;
        }
        // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
        let value = value.trim();
        let (int, frac) = value.split_once('.').unwrap_or((value, ""));
        if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let milli = frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'));
        q = match int {
            "0" => milli,
            "1" if milli == 0 => 1000,
            _ => return None,
        };
    }
    Some(q)
}

/// A moment shown to people: to the minute, in UTC, the same in both languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When(pub DateTime<Utc>);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M UTC"))
    }
}

/// Field names as a client writes them, quoted: "`name`, `settings`".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields(pub &'static [&'static str]);

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}`")?;
        }
        Ok(())
    }
}

/// Declares `Msg` with its translations. Every argument is passed to both `format!` calls by
/// name, so a translation that leaves one out, or names one that does not exist, fails to
/// compile.
macro_rules! catalog {
    ($(
        $(#[$doc:meta])*
        $name:ident $({ $($arg:ident: $ty:ty),+ $(,)? })? => {
            ru: $ru:literal,
            en: $en:literal $(,)?
        }
    ),+ $(,)?) => {
        /// A user-visible message with its arguments; `render` picks the language.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum Msg {
            $($(#[$doc])* $name $({ $($arg: $ty),+ })?,)+
        }

        impl Msg {
            /// The message's stable key, e.g. `TextLength`.
            pub fn key(&self) -> &'static str {
                match self {
                    $(Msg::$name { .. } => stringify!($name),)+
                }
            }

            pub fn render(&self, lang: Lang) -> String {
                match self {
                    $(Msg::$name $({ $($arg),+ })? => match lang {
                        Lang::Ru => format!($ru $($(, $arg = $arg)+)?),
                        Lang::En => format!($en $($(, $arg = $arg)+)?),
                    },)+
                }
            }

            /// One message of every key, with sample arguments.
            #[cfg(test)]
            fn samples() -> Vec<Msg> {
                vec![$(Msg::$name $({ $($arg: Sample::sample()),+ })?,)+]
            }
        }
    };
}

catalog! {
    // --- request errors, one per `ApiError` variant with a fixed text ---------------------

    /// The body is not JSON, or not JSON of the expected shape; `detail` is serde's own words.
    InvalidJson { detail: String } => {
        ru: "некорректный JSON: {detail}",
        en: "malformed JSON: {detail}",
    },
    PayloadTooLarge { limit: usize } => {
        ru: "тело запроса больше допустимых {limit} байт",
        en: "the request body is larger than the limit of {limit} bytes",
    },
    UnsupportedMediaType => {
        ru: "тело запроса должно быть в формате application/json",
        en: "the request body must be application/json",
    },
    Unauthenticated => {
        ru: "сначала войдите в систему",
        en: "sign in first",
    },
    InvalidCredentials => {
        ru: "неверный e-mail или пароль",
        en: "wrong e-mail or password",
    },
    TotpRequired => {
        ru: "введите код из приложения-аутентификатора",
        en: "enter the code from your authenticator app",
    },
    InvalidTotp => {
        ru: "код второго фактора неверен или устарел",
        en: "the second-factor code is wrong or expired",
    },
    AccountLocked { seconds: i64 } => {
        ru: "слишком много неудачных попыток входа: учётная запись заблокирована ещё на {seconds} с",
        en: "too many failed sign-ins: the account is locked for {seconds} more seconds",
    },
    RateLimited { seconds: u64 } => {
        ru: "слишком много запросов: повторите через {seconds} с",
        en: "too many requests: try again in {seconds} seconds",
    },
    CsrfFailed => {
        ru: "CSRF-токен не передан или неверен: отправляйте заголовок X-CSRF-Token, полученный при входе",
        en: "missing or wrong CSRF token: send the X-CSRF-Token header you got at sign-in",
    },
    Forbidden => {
        ru: "у вас нет права на это действие",
        en: "you do not have the right to do this",
    },
    ClientBlocked => {
        ru: "этот клиент заблокирован платформой",
        en: "this client is blocked by the platform",
    },
    NotFound => {
        ru: "не найдено",
        en: "not found",
    },
    InvalidToken => {
        ru: "ссылка недействительна, уже использована или устарела",
        en: "the link is invalid, used or expired",
    },
    EmailNotConfigured => {
        ru: "исходящая почта на этом сервере не настроена",
        en: "outgoing e-mail is not configured on this server",
    },
    /// `detail` names the part that is not ready and its error, for operators.
    NotReady { detail: String } => {
        ru: "сервис не готов: {detail}",
        en: "not ready: {detail}",
    },
    Internal { request_id: String } => {
        ru: "внутренняя ошибка; сообщая о ней, укажите идентификатор запроса {request_id}",
        en: "internal error; quote request id {request_id} when reporting it",
    },

    // --- path and query parameters ----------------------------------------------------------

    /// `detail` is actix's and serde's own words.
    InvalidPathParameter { detail: String } => {
        ru: "некорректный параметр пути: {detail}",
        en: "invalid path parameter: {detail}",
    },
    /// `detail` is actix's and serde's own words (it names an unknown parameter).
    InvalidQueryParameter { detail: String } => {
        ru: "некорректный параметр запроса: {detail}",
        en: "invalid query parameter: {detail}",
    },
    NotUuid { field: &'static str } => {
        ru: "`{field}` должен быть UUID",
        en: "`{field}` must be a UUID",
    },

    // --- validation (`validation_failed`) ---------------------------------------------------

    InvalidEmail { field: &'static str } => {
        ru: "поле `{field}` должно содержать корректный адрес e-mail",
        en: "`{field}` must be a valid e-mail address",
    },
    PasswordLength { min: usize, max: usize } => {
        ru: "пароль должен содержать от {min} до {max} символов",
        en: "password must be {min} to {max} characters long",
    },
    TextLength { field: &'static str, max: usize } => {
        ru: "поле `{field}` должно содержать от 1 до {max} символов без управляющих символов",
        en: "`{field}` must be 1 to {max} characters without control characters",
    },
    UnknownLocale { choices: Fields } => {
        ru: "поле `locale` должно быть одним из: {choices}",
        en: "locale must be one of: {choices}",
    },
    NumberRange { field: &'static str, min: i64, max: i64 } => {
        ru: "поле `{field}` должно быть от {min} до {max}",
        en: "`{field}` must be {min} to {max}",
    },
    NotJsonObject { field: &'static str } => {
        ru: "поле `{field}` должно быть JSON-объектом",
        en: "`{field}` must be a JSON object",
    },
    /// A patch that changes nothing.
    NothingToChange { fields: Fields } => {
        ru: "передайте хотя бы одно из полей: {fields}",
        en: "send at least one of {fields}",
    },
    /// `provider` and `kind` are the API's enum values.
    TelephonySettings { detail: String } => {
        ru: "настройки телефонии не подходят: {detail}",
        en: "the telephony settings do not work: {detail}",
    },
    InvalidPhone { number: String } => {
        ru: "`{number}` — не номер телефона: укажите его в международном формате, например +74951234567",
        en: "`{number}` is not a phone number: give it in international format, e.g. +74951234567",
    },
    NoPhoneToCall => {
        ru: "не указан номер: передайте `number` или заполните поле `phone` у контакта",
        en: "no number to call: send `number` or fill in the contact's `phone` field",
    },
    NoTelephony => {
        ru: "телефония не подключена: подключите канал Asterisk, Zadarma или Twilio",
        en: "no telephony is connected: connect an Asterisk, Zadarma or Twilio channel",
    },
    NotTelephony => {
        ru: "этот канал не телефония",
        en: "this channel is not a telephony channel",
    },
    CallbackOutOfHours => {
        ru: "сейчас нерабочее время: обратный звонок недоступен",
        en: "it is outside working hours: call-backs are not available now",
    },
    CaptchaFailed => {
        ru: "проверка капчи не пройдена",
        en: "the captcha check failed",
    },
    InvalidLink => {
        ru: "ссылка на файл неверна или её срок истёк",
        en: "this file link is invalid or has expired",
    },
    CallRequested { number: String } => {
        ru: "📞 Запрошен обратный звонок на {number}",
        en: "📞 Call-back requested to {number}",
    },
    CallAnswered { number: String, duration: String } => {
        ru: "📞 Звонок на {number}: состоялся, длительность {duration}",
        en: "📞 Call to {number}: answered, lasted {duration}",
    },
    CallNoAnswer { number: String } => {
        ru: "📞 Звонок на {number}: нет ответа",
        en: "📞 Call to {number}: no answer",
    },
    CallBusy { number: String } => {
        ru: "📞 Звонок на {number}: занято",
        en: "📞 Call to {number}: busy",
    },
    CallFailed { number: String, reason: String } => {
        ru: "📞 Звонок на {number}: не удался ({reason})",
        en: "📞 Call to {number}: failed ({reason})",
    },
    ProviderLacksKind { provider: &'static str, kind: &'static str } => {
        ru: "у провайдера `{provider}` нет учётных записей вида `{kind}`",
        en: "provider `{provider}` has no {kind} accounts",
    },
    ChannelListedTwice { channel: ChannelId } => {
        ru: "канал {channel} указан дважды",
        en: "channel {channel} is listed twice",
    },
    ChannelWithoutRights { channel: ChannelId } => {
        ru: "для канала {channel} не указано ни одного права: перечислите хотя бы одно или не указывайте канал",
        en: "channel {channel} has no rights: list at least one or leave the channel out",
    },
    /// `provider` is the API's enum value.
    NothingToTest { provider: &'static str } => {
        ru: "у каналов `{provider}` нет подключения к провайдеру, которое можно проверить",
        en: "`{provider}` channels have no provider connection to test",
    },
    ProviderMismatch => {
        ru: "`provider` не совпадает с провайдером сохранённого канала `channel_id`",
        en: "`provider` differs from the provider of the saved channel `channel_id`",
    },
    OwnerHoldsEveryRight => {
        ru: "владелец клиента всегда имеет все права; чтобы ограничить их, задайте `role` = `employee`",
        en: "a client owner always holds every right; set `role` to `employee` to limit them",
    },

    // --- conflicts (`conflict`) -------------------------------------------------------------

    /// A unique value is taken; `field` names it.
    NoWebhookToRegister => {
        ru: "у этого канала нет вебхука у провайдера: регистрировать нечего",
        en: "this channel has no provider webhook to register",
    },
    ProviderRefused { reason: String } => {
        ru: "провайдер отказал: {reason}",
        en: "the provider refused: {reason}",
    },

    // --- a provider's problems (`Problem` codes), for channel health and refusals ----------

    HealthOk => {
        ru: "подключено: провайдер принимает учётные данные и доставляет обновления",
        en: "connected: the provider accepts the credentials and delivers updates",
    },
    HealthNotConfigured => {
        ru: "с такими настройками или учётными данными подключение работать не может",
        en: "the settings or credentials cannot work as entered",
    },
    ProblemInvalidToken => {
        ru: "провайдер не принимает токен или пароль: введите действующий",
        en: "the provider refuses the token or password: enter the current one",
    },
    ProblemWebhookNotSet => {
        ru: "провайдер не присылает обновления сюда: зарегистрируйте вебхук",
        en: "the provider does not deliver updates here: register the webhook",
    },
    ProblemBlockedByUser => {
        ru: "клиент заблокировал бота или отписался: сообщения не дойдут, пока он не напишет снова",
        en: "the customer blocked the bot or unsubscribed: nothing reaches them until they write again",
    },
    ProblemRateLimited => {
        ru: "провайдер временно ограничивает запросы; отправка возобновится сама",
        en: "the provider is limiting requests for now; sending resumes by itself",
    },
    ProblemUnreachable => {
        ru: "провайдер недоступен",
        en: "the provider cannot be reached",
    },
    ProblemProviderError => {
        ru: "провайдер ответил ошибкой",
        en: "the provider answered with an error",
    },
    ValueTaken { field: &'static str } => {
        ru: "такое значение поля `{field}` уже занято",
        en: "this {field} is already taken",
    },
    EmailTaken => {
        ru: "пользователь с таким e-mail уже существует",
        en: "a user with this e-mail already exists",
    },
    GroupNameTaken => {
        ru: "группа с таким названием уже существует",
        en: "a group with this name already exists",
    },
    OwnAccessChange => {
        ru: "нельзя менять собственные роль, права или каналы и отключать самого себя; обратитесь к другому владельцу",
        en: "you cannot change your own role, rights or channels, nor disable yourself; ask another owner",
    },
    TotpSetupWhileEnabled => {
        ru: "второй фактор уже включён; сначала отключите его",
        en: "a second factor is already enabled; disable it first",
    },
    TotpSetupFirst => {
        ru: "сначала начните подключение через /auth/totp/setup",
        en: "start with /auth/totp/setup",
    },
    TotpAlreadyEnabled => {
        ru: "второй фактор уже включён",
        en: "the second factor is already enabled",
    },

    // --- the realtime hub: conversations, webhooks, the operator WebSocket -----------------

    /// A message text: line breaks and tabs are allowed, other control characters are not.
    MessageText { field: &'static str, max: usize } => {
        ru: "поле `{field}` должно содержать от 1 до {max} символов; из управляющих символов допустимы только переводы строки и табуляция",
        en: "`{field}` must be 1 to {max} characters; line breaks and tabs are the only control characters allowed",
    },
    IdempotencyKeyRequired => {
        ru: "передайте ключ идемпотентности в поле `idempotency_key` или в заголовке Idempotency-Key",
        en: "send an idempotency key in `idempotency_key` or in the Idempotency-Key header",
    },
    /// Files of a reply.
    ReplyAttachments { max: usize } => {
        ru: "ответ может содержать не больше {max} разных файлов; к заметкам файлы не прикрепляются",
        en: "a reply carries at most {max} distinct files; notes carry none",
    },
    UnknownAttachment => {
        ru: "среди `attachment_ids` есть файл, не загруженный в этот диалог",
        en: "an id in `attachment_ids` is not a file uploaded to this conversation",
    },
    AttachmentAlreadySent => {
        ru: "файл уже отправлен с другим сообщением; загрузите его заново",
        en: "a file was already sent with another message; upload it again",
    },
    UploadNotMultipart => {
        ru: "отправьте файл как multipart/form-data в части с именем `file`",
        en: "send the file as multipart/form-data in a part named `file`",
    },
    UploadForbiddenType { mime: String } => {
        ru: "файлы типа `{mime}` отправлять нельзя: веб-страницы, скрипты и программы не принимаются",
        en: "files of type `{mime}` cannot be sent: pages, scripts and programs are refused",
    },
    UploadMalformedType => {
        ru: "тип файла не является корректным MIME-типом",
        en: "the file's type is not a valid MIME type",
    },
    AttachmentNotReady => {
        ru: "файл ещё не загружен от провайдера (или загрузка не удалась)",
        en: "the file is not downloaded from the provider (yet, or the download failed)",
    },
    /// `detail` is the multipart parser's own words.
    UploadBroken { detail: String } => {
        ru: "загрузка повреждена или прервалась: {detail}",
        en: "the upload is malformed or broke off: {detail}",
    },
    UploadEmpty => {
        ru: "файл пуст",
        en: "the file is empty",
    },
    IdempotencyKeyMismatch => {
        ru: "заголовок Idempotency-Key и поле `idempotency_key` различаются",
        en: "the Idempotency-Key header and `idempotency_key` differ",
    },
    /// `from` and `to` are the API's status values.
    StatusTransition { from: &'static str, to: &'static str } => {
        ru: "нельзя вручную перевести диалог из статуса `{from}` в `{to}`",
        en: "a conversation cannot be moved from `{from}` to `{to}` by hand",
    },
    SnoozeUntil => {
        ru: "поле `snoozed_until` должно содержать момент в будущем и передаваться вместе со статусом `snoozed`",
        en: "`snoozed_until` must be a future moment, sent together with status `snoozed`",
    },
    AssigneeCannotSee => {
        ru: "назначаемый сотрудник не видит этот диалог: канал ему не делегирован",
        en: "the assignee cannot see this conversation: its channel is not delegated to them",
    },
    AlreadyAssigned => {
        ru: "диалог уже взял в работу другой сотрудник",
        en: "someone else has already taken this conversation",
    },
    UnknownView => {
        ru: "параметр `view` должен быть `mine`, `unassigned`, `all` или `group:<id>`",
        en: "`view` must be `mine`, `unassigned`, `all` or `group:<id>`",
    },
    /// A pagination cursor that this server did not hand out.
    BadCursor { field: &'static str } => {
        ru: "параметр `{field}` не является курсором, выданным сервером",
        en: "`{field}` is not a cursor this server handed out",
    },
    TemplateUnknownVariable { name: String } => {
        ru: "неизвестная переменная шаблона `{name}`",
        en: "unknown template variable `{name}`",
    },
    /// `near` is the template text from the unclosed variable on.
    TemplateUnclosed { near: String } => {
        ru: "в шаблоне не закрыта переменная: `{near}`",
        en: "the template leaves a variable open: `{near}`",
    },
    UnknownTimezone { zone: String } => {
        ru: "неизвестный часовой пояс `{zone}`",
        en: "unknown time zone `{zone}`",
    },
    /// `day` counts from 1 = Monday, `period` from 1.
    HoursRange { day: usize, period: usize } => {
        ru: "рабочие часы, день {day} (1 — понедельник), интервал {period}: начало должно быть раньше конца и не раньше конца предыдущего интервала",
        en: "working hours, day {day} (1 is Monday), period {period}: it must end after it starts and start at or after the end of the previous period",
    },
    /// `day` counts from 1 = Monday.
    TooManyRanges { day: usize, max: usize } => {
        ru: "рабочие часы, день {day}: не более {max} интервалов",
        en: "working hours, day {day}: at most {max} periods",
    },
    /// `detail` is the hub's own words (English).
    ConversationRule { detail: String } => {
        ru: "запрос нарушает правила работы с диалогом: {detail}",
        en: "the request breaks a conversation rule: {detail}",
    },
    /// A contact's custom fields: too many, a bad name, or a value that is not plain.
    ContactFieldCount { max: usize } => {
        ru: "у контакта может быть не больше {max} дополнительных полей",
        en: "a contact has at most {max} custom fields",
    },
    ContactFieldName { max: usize } => {
        ru: "название дополнительного поля должно содержать от 1 до {max} символов без пробелов по краям и управляющих символов",
        en: "a custom field's name must be 1 to {max} characters, without surrounding spaces or control characters",
    },
    ContactFieldValue { key: String, max: usize } => {
        ru: "значение поля `{key}` должно быть текстом до {max} символов, числом или true/false",
        en: "the value of `{key}` must be text of at most {max} characters, a number or true/false",
    },
    MergeWithItself => {
        ru: "контакт нельзя объединить с самим собой",
        en: "a contact cannot be merged with itself",
    },
    InvalidSignature => {
        ru: "запрос не подписан входящим токеном этого канала",
        en: "the request is not signed with this channel's inbound token",
    },
    MethodNotAllowed { allowed: &'static str } => {
        ru: "этот метод здесь не поддерживается; используйте {allowed}",
        en: "this method is not allowed here; use {allowed}",
    },
    WsUpgradeRequired => {
        ru: "этот адрес принимает только WebSocket: отправьте запрос с заголовками Upgrade: websocket",
        en: "this address speaks WebSocket only: send an Upgrade: websocket request",
    },
    /// `detail` is serde's own words.
    WsInvalidMessage { detail: String } => {
        ru: "некорректное сообщение: {detail}",
        en: "malformed message: {detail}",
    },
    // --- the website widget ------------------------------------------------------------------

    /// A widget's origin that is not `scheme://host[:port]`, or not https off localhost.
    WidgetOrigin { value: String } => {
        ru: "`{value}` не подходит как адрес сайта: нужно https://сайт (http только для localhost), без пути",
        en: "`{value}` is not a site origin: use https://site (http for localhost only), without a path",
    },
    WidgetColor { field: &'static str, value: String } => {
        ru: "поле `{field}`: `{value}` — не цвет вида #1f6feb",
        en: "`{field}`: `{value}` is not a colour like #1f6feb",
    },
    WidgetText { field: &'static str, max: usize } => {
        ru: "поле `{field}`: не больше {max} символов, без управляющих символов",
        en: "`{field}`: at most {max} characters, no control characters",
    },
    WidgetLink { field: &'static str, hosts: &'static str } => {
        ru: "поле `{field}`: нужна ссылка https на {hosts}",
        en: "`{field}`: an https link to {hosts} is expected",
    },
    WidgetTooMany { field: &'static str, max: usize } => {
        ru: "поле `{field}`: не больше {max} значений",
        en: "`{field}`: at most {max} values",
    },
    WidgetAttachmentSize { max: u64 } => {
        ru: "поле `attachments.max_bytes`: от 1 до {max} байт",
        en: "`attachments.max_bytes`: 1 to {max} bytes",
    },
    WidgetAttachmentType { value: String } => {
        ru: "поле `attachments.types`: `{value}` — не тип файла вида image/png или image/*, либо такие файлы (страницы, скрипты, программы) не принимаются",
        en: "`attachments.types`: `{value}` is not a file type like image/png or image/*, or one never taken (pages, scripts, programs)",
    },
    /// The widget's owner turned visitors' files off.
    WidgetAttachmentsOff => {
        ru: "этот чат не принимает файлы",
        en: "this chat does not take files",
    },
    /// `mime` is what the file's content is, not what the browser said.
    WidgetFileType { mime: String } => {
        ru: "файлы типа `{mime}` в этот чат отправлять нельзя",
        en: "files of type `{mime}` cannot be sent to this chat",
    },
    WidgetDuplicateField => {
        ru: "каждое поле анкеты можно указать только один раз",
        en: "each pre-chat field may be listed once",
    },
    /// Widgets are created and edited through `/api/v1/widgets`, whose settings are checked.
    UseWidgetsApi => {
        ru: "виджеты создаются и настраиваются через /api/v1/widgets",
        en: "widgets are created and configured through /api/v1/widgets",
    },
    /// The page's origin is not in the widget's allow-list (or the request named none).
    OriginNotAllowed => {
        ru: "этот сайт не может пользоваться виджетом: добавьте его адрес в настройки виджета",
        en: "this site may not use the widget: add its origin to the widget's settings",
    },
    /// A visitor's token is missing, wrong or of another widget.
    VisitorUnknown => {
        ru: "посетитель не найден: создайте нового",
        en: "unknown visitor: create a new one",
    },
    /// A pre-chat field the widget requires was left empty.
    PrechatFieldRequired { field: &'static str } => {
        ru: "заполните поле `{field}`",
        en: "`{field}` is required",
    },
    /// How operators see a visitor who gave no name; `short` is a bit of their id.
    WidgetVisitorName { short: String } => {
        ru: "Посетитель сайта {short}",
        en: "Website visitor {short}",
    },
    PrechatFieldInvalid { field: &'static str } => {
        ru: "поле `{field}` заполнено неверно",
        en: "`{field}` is not valid",
    },
    WsBinaryFrame => {
        ru: "принимаются только текстовые кадры с JSON",
        en: "only text frames carrying JSON are understood",
    },
    WsUnsupportedVersion => {
        ru: "поддерживается только версия протокола `v` = 1",
        en: "only protocol version `v` = 1 is supported",
    },
    WsHelloRequired => {
        ru: "сначала отправьте сообщение `hello`",
        en: "send `hello` first",
    },
    WsHelloRepeated => {
        ru: "сообщение `hello` уже было отправлено",
        en: "`hello` was already sent",
    },

    // --- the scheduler and triggered tasks --------------------------------------------------

    /// `reason` is the cron parser's own words.
    InvalidCron { expression: String, reason: String } => {
        ru: "неверное cron-выражение `{expression}`: {reason}",
        en: "invalid cron expression `{expression}`: {reason}",
    },
    CronNeverFires { expression: String } => {
        ru: "cron-выражение `{expression}` никогда не срабатывает",
        en: "the cron expression `{expression}` never fires",
    },
    InvalidCatchUp { value: String } => {
        ru: "неизвестная политика догоняния `{value}`: допустимы fire_all_missed, fire_once и skip_if_older_than:СЕКУНДЫ",
        en: "unknown catch-up policy `{value}`: use fire_all_missed, fire_once or skip_if_older_than:SECONDS",
    },
    /// `status` is the task's status.
    TaskCannotCancel { status: &'static str } => {
        ru: "задачу в статусе `{status}` нельзя отменить: отменяются только ожидающие и неудавшиеся",
        en: "a task that is `{status}` cannot be cancelled: only pending and failed ones can",
    },
    TaskCannotReschedule { status: &'static str } => {
        ru: "задачу в статусе `{status}` нельзя перенести: переносятся ожидающие, неудавшиеся и пропущенные",
        en: "a task that is `{status}` cannot be rescheduled: only pending, failed and skipped ones can",
    },
    TaskCannotRetry { status: &'static str } => {
        ru: "задачу в статусе `{status}` нельзя повторить: повторяются только неудавшиеся и пропущенные",
        en: "a task that is `{status}` cannot be retried: only failed and skipped ones can",
    },
    TimeRangeOrder => {
        ru: "параметр `from` должен быть раньше `to`",
        en: "`from` must be before `to`",
    },
    InvalidHashtag { value: String } => {
        ru: "`{value}` не хэштег: после # допустимы только буквы, цифры и _",
        en: "`{value}` is not a hashtag: only letters, digits and _ may follow the #",
    },
    NotifyWhom => {
        ru: "сотрудник для уведомления не найден среди сотрудников клиента",
        en: "the employee to notify is not one of the client's users",
    },

    // --- e-mails ----------------------------------------------------------------------------

    PasswordResetSubject => {
        ru: "omnihub: сброс пароля",
        en: "omnihub: password reset",
    },
    PasswordResetBody { link: String, minutes: i64 } => {
        ru: "Чтобы задать новый пароль, откройте ссылку (действует {minutes} мин.):\n\n{link}\n\nЕсли вы не запрашивали сброс, просто проигнорируйте это письмо.",
        en: "To set a new password, open this link (valid for {minutes} minutes):\n\n{link}\n\nIf you did not ask for it, ignore this e-mail.",
    },
    InviteSubject => {
        ru: "omnihub: приглашение в команду",
        en: "omnihub: you are invited",
    },
    InviteBody { link: String, until: When } => {
        ru: "Вас пригласили в omnihub. Чтобы присоединиться, откройте ссылку (действует до {until}):\n\n{link}",
        en: "You are invited to omnihub. To join, open this link (valid until {until}):\n\n{link}",
    },
    AccountSetupSubject => {
        ru: "omnihub: ваша учётная запись",
        en: "omnihub: your account",
    },
    AccountSetupBody { link: String, until: When } => {
        ru: "Для вас создана учётная запись omnihub. Чтобы задать пароль, откройте ссылку (действует до {until}):\n\n{link}",
        en: "An omnihub account was created for you. To set your password, open this link (valid until {until}):\n\n{link}",
    },

    // --- social publishing -----------------------------------------------------------------

    /// `action` is the capability's name; `reason` is the capability matrix's, in English.
    SocialUnsupported { network: String, action: String, reason: String } => {
        ru: "{network}: действие `{action}` недоступно ({reason})",
        en: "{network}: `{action}` is not available ({reason})",
    },
    SocialPostEmpty { network: String } => {
        ru: "{network}: в посте нет ни текста, ни файлов, ни ссылки",
        en: "{network}: the post has no text, files or link",
    },
    SocialTextTooLong { network: String, max: usize } => {
        ru: "{network}: текст поста вместе с упоминаниями и хештегами длиннее {max} символов",
        en: "{network}: the post's text, mentions and hashtags included, is longer than {max} characters",
    },
    SocialTooManyImages { network: String, max: usize } => {
        ru: "{network}: не больше {max} изображений в посте",
        en: "{network}: at most {max} images a post",
    },
    SocialImageType { network: String } => {
        ru: "{network}: такой тип изображения не принимается",
        en: "{network}: this type of image is not taken",
    },
    SocialImageSize { network: String, max: usize } => {
        ru: "{network}: изображение больше {max} байт",
        en: "{network}: an image is larger than {max} bytes",
    },
    SocialTooManyVideos { network: String, max: usize } => {
        ru: "{network}: не больше {max} видео в посте",
        en: "{network}: at most {max} videos a post",
    },
    SocialVideoWithImages { network: String } => {
        ru: "{network}: видео публикуется без изображений",
        en: "{network}: a video is posted without images",
    },
    SocialVideoType { network: String } => {
        ru: "{network}: такой формат видео не принимается",
        en: "{network}: this video format is not taken",
    },
    SocialVideoSize { network: String, max: u64 } => {
        ru: "{network}: видео больше {max} байт",
        en: "{network}: a video is larger than {max} bytes",
    },
    SocialMediaType { mime: String } => {
        ru: "в медиатеку нельзя добавить файл типа `{mime}`: только изображения (JPEG, PNG, GIF, WebP) и видео (MP4, QuickTime, WebM)",
        en: "a file of type `{mime}` cannot go in the media library: only images (JPEG, PNG, GIF, WebP) and videos (MP4, QuickTime, WebM)",
    },
    PostText { max: usize } => {
        ru: "текст поста — не больше {max} символов, без управляющих символов",
        en: "a post's text is at most {max} characters, without control characters",
    },
    PostLink => {
        ru: "ссылка — один адрес http(s)",
        en: "the link must be one http(s) address",
    },
    PostHashtag => {
        ru: "хештеги — буквы, цифры и `_`, не больше 30",
        en: "hashtags are letters, digits and `_`, at most 30 of them",
    },
    PostMention => {
        ru: "упоминания — идентификаторы или короткие имена, не больше 50",
        en: "mentions are ids or screen names, at most 50 of them",
    },
    PostLocation => {
        ru: "место — это место из каталога сети или широта (от -90 до 90) вместе с долготой (от -180 до 180)",
        en: "a location is a place, or a latitude (-90 to 90) with a longitude (-180 to 180)",
    },
    PostPlace => {
        ru: "место — его идентификатор в сети или адрес его страницы, без пробелов",
        en: "a place is its id on the network or the address of its page, without spaces",
    },
    SocialPlaceNeeded { network: String } => {
        ru: "{network}: место указывается как место из каталога сети (его идентификатор или адрес его страницы), а не координатами",
        en: "{network}: a location here is a place of the network's catalogue (its id or the address of its page), not coordinates",
    },
    SocialCoordinatesNeeded { network: String } => {
        ru: "{network}: место указывается координатами (широта и долгота), а не местом из каталога",
        en: "{network}: a location here is coordinates (latitude and longitude), not a place of a catalogue",
    },
    /// `example` is an address of a place's page on that network.
    SocialBadPlace { network: String, example: String } => {
        ru: "{network}: это не идентификатор места и не адрес его страницы в этой сети (например, {example})",
        en: "{network}: this is neither the id of a place on the network nor the address of its page (like {example})",
    },
    PostMedia { max: usize } => {
        ru: "не больше {max} файлов в посте",
        en: "at most {max} files a post",
    },
    /// A field whose value is none of those allowed (a network, an action, a time).
    SocialBadValue { field: &'static str } => {
        ru: "недопустимое значение поля `{field}`",
        en: "`{field}` has a value that is not allowed",
    },
    NoSuchLocalTime => {
        ru: "такого времени в этом часовом поясе нет (перевод часов)",
        en: "that time does not exist in that time zone (a clock change skips it)",
    },
    ScheduleInPast => {
        ru: "время публикации уже прошло",
        en: "the publication time has passed",
    },
    PostNoProfiles => {
        ru: "выберите хотя бы один профиль, без повторов",
        en: "choose at least one profile, each once",
    },
    PostStatus { status: String } => {
        ru: "пост в состоянии «{status}»: этот шаг отсюда невозможен",
        en: "the post is {status}: this step cannot be taken from there",
    },
    NetworkNotConnectable { network: String, reason: String } => {
        ru: "профили сети {network} подключить нельзя: {reason}",
        en: "{network} profiles cannot be connected: {reason}",
    },
    OAuthStateInvalid => {
        ru: "ссылка авторизации недействительна, уже использована или открыта не в вашем сеансе; начните подключение заново",
        en: "the authorization link is invalid, used, or opened outside your session; start connecting again",
    },
}

impl From<omnihub_core::social::InvalidPost> for Msg {
    fn from(e: omnihub_core::social::InvalidPost) -> Msg {
        use omnihub_core::social::InvalidPost;
        match e {
            InvalidPost::Text { max } => Msg::PostText { max },
            InvalidPost::Link => Msg::PostLink,
            InvalidPost::Hashtag => Msg::PostHashtag,
            InvalidPost::Mention => Msg::PostMention,
            InvalidPost::Location => Msg::PostLocation,
            InvalidPost::Place => Msg::PostPlace,
            InvalidPost::Media { max } => Msg::PostMedia { max },
            InvalidPost::TimeZone { zone } => Msg::UnknownTimezone { zone },
            InvalidPost::NoSuchLocalTime => Msg::NoSuchLocalTime,
        }
    }
}

impl From<Invalid> for Msg {
    fn from(e: Invalid) -> Msg {
        match e {
            Invalid::Email { field } => Msg::InvalidEmail { field },
            Invalid::PasswordLength { min, max } => Msg::PasswordLength { min, max },
            Invalid::Text { field, max } => Msg::TextLength { field, max },
            Invalid::Locale => Msg::UnknownLocale {
                choices: Fields(&omnihub_core::validate::LOCALES),
            },
        }
    }
}

/// An e-mail's subject and body, rendered for one reader or for both languages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    subject: Msg,
    body: Msg,
}

impl Mail {
    /// A password-reset link valid for `minutes`.
    pub fn password_reset(link: &str, minutes: i64) -> Mail {
        Mail {
            subject: Msg::PasswordResetSubject,
            body: Msg::PasswordResetBody {
                link: link.to_string(),
                minutes,
            },
        }
    }

    /// An invitation to join a client as an employee.
    pub fn invite(link: &str, expires_at: DateTime<Utc>) -> Mail {
        Mail {
            subject: Msg::InviteSubject,
            body: Msg::InviteBody {
                link: link.to_string(),
                until: When(expires_at),
            },
        }
    }

    /// The link to set the first password of an account the platform created.
    pub fn account_setup(link: &str, expires_at: DateTime<Utc>) -> Mail {
        Mail {
            subject: Msg::AccountSetupSubject,
            body: Msg::AccountSetupBody {
                link: link.to_string(),
                until: When(expires_at),
            },
        }
    }

    /// Subject and body in the reader's language, or, when it is unknown (`None`), in both:
    /// Russian first, then English.
    pub fn render(&self, lang: Option<Lang>) -> (String, String) {
        match lang {
            Some(lang) => (self.subject.render(lang), self.body.render(lang)),
            None => (
                format!(
                    "{} / {}",
                    self.subject.render(Lang::Ru),
                    self.subject.render(Lang::En)
                ),
                format!(
                    "{}\n\n---\n\n{}",
                    self.body.render(Lang::Ru),
                    self.body.render(Lang::En)
                ),
            ),
        }
    }
}

impl Msg {
    /// A provider's problem in words.
    pub fn of_problem(problem: omnihub_connectors::provider::Problem) -> Msg {
        use omnihub_connectors::provider::Problem;
        match problem {
            Problem::InvalidToken => Msg::ProblemInvalidToken,
            Problem::WebhookNotSet => Msg::ProblemWebhookNotSet,
            Problem::BlockedByUser => Msg::ProblemBlockedByUser,
            Problem::RateLimited => Msg::ProblemRateLimited,
            Problem::Unreachable => Msg::ProblemUnreachable,
            Problem::ProviderError => Msg::ProblemProviderError,
        }
    }
}

/// A value for every argument type, so the tests can render each message.
#[cfg(test)]
trait Sample {
    fn sample() -> Self;
}

#[cfg(test)]
mod samples {
    use super::*;

    macro_rules! sample {
        ($($ty:ty => $value:expr;)+) => {$(
            impl Sample for $ty {
                fn sample() -> Self {
                    $value
                }
            }
        )+};
    }

    sample! {
        String => "sample detail".to_string();
        &'static str => "sample_field";
        usize => 7;
        i64 => 7;
        u64 => 7;
        ChannelId => ChannelId(uuid::Uuid::nil());
        When => When(DateTime::UNIX_EPOCH);
        Fields => Fields(&["a", "b"]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn is_cyrillic(c: char) -> bool {
        ('\u{0400}'..='\u{04FF}').contains(&c)
    }

    #[test]
    fn every_message_has_both_translations_and_russian_is_russian() {
        let samples = Msg::samples();
        let keys: HashSet<&str> = samples.iter().map(Msg::key).collect();
        assert_eq!(keys.len(), samples.len(), "a key is declared twice");
        for msg in &samples {
            let ru = msg.render(Lang::Ru);
            let en = msg.render(Lang::En);
            let key = msg.key();
            assert!(!ru.trim().is_empty() && !en.trim().is_empty(), "{key}");
            assert_ne!(ru, en, "{key} is not translated");
            assert!(ru.chars().any(is_cyrillic), "{key}: not Russian: {ru}");
            assert!(
                !en.chars().any(is_cyrillic),
                "{key}: Cyrillic in English: {en}"
            );
            // No stray template braces: every placeholder was filled.
            for text in [&ru, &en] {
                assert!(
                    !text.contains(['{', '}']),
                    "{key}: unfilled placeholder: {text}"
                );
            }
        }
    }

    #[test]
    fn arguments_are_quoted_verbatim() {
        let msg = Msg::TextLength {
            field: "display_name",
            max: 200,
        };
        assert_eq!(
            msg.render(Lang::En),
            "`display_name` must be 1 to 200 characters without control characters"
        );
        assert!(msg.render(Lang::Ru).contains("`display_name`"));
        let serde = "unknown field `role`, expected one of `display_name`, `locale`";
        let msg = Msg::InvalidJson {
            detail: serde.into(),
        };
        assert!(msg.render(Lang::Ru).ends_with(serde));
        assert_eq!(
            Msg::NothingToChange {
                fields: Fields(&["name", "settings"])
            }
            .render(Lang::En),
            "send at least one of `name`, `settings`"
        );
    }

    #[test]
    fn every_validation_error_maps_to_a_message() {
        let cases = [
            Invalid::Email { field: "email" },
            Invalid::PasswordLength { min: 10, max: 256 },
            Invalid::Text {
                field: "name",
                max: 200,
            },
            Invalid::Locale,
        ];
        for invalid in cases {
            let english = invalid.to_string();
            let msg = Msg::from(invalid);
            if msg.key() == "UnknownLocale" {
                // The choices are quoted like every value a client types.
                assert_eq!(msg.render(Lang::En), "locale must be one of: `ru`, `en`");
            } else {
                // Core's own wording is the English text, so API messages did not change.
                assert_eq!(msg.render(Lang::En), english);
            }
        }
    }

    #[test]
    fn accept_language() {
        let cases = [
            ("ru-RU,ru;q=0.9", Lang::Ru),
            ("ru", Lang::Ru),
            ("RU-ru", Lang::Ru),
            ("en", Lang::En),
            ("en-GB, ru;q=0.5", Lang::En),
            ("de-DE,de;q=0.9,ru;q=0.8,en;q=0.7", Lang::Ru),
            ("de-DE,de;q=0.9,en;q=0.8,ru;q=0.7", Lang::En),
            ("ru;q=0.5, en;q=0.6", Lang::En),
            ("ru;q=0.8, en;q=0.8", Lang::Ru),
            ("en;q=0.8, ru;q=0.8", Lang::En),
            ("ru;q=1.000", Lang::Ru),
            ("ru;Q=0.3", Lang::Ru),
            ("ru ; q = 0.3", Lang::Ru),
            // Nothing we ship, nothing at all, or nothing well-formed: the default.
            ("de, fr;q=0.5", Lang::En),
            ("", Lang::En),
            ("   ", Lang::En),
            ("ru;q=2", Lang::En),
            ("ru;q=0.1234", Lang::En),
            ("ru;q=x", Lang::En),
            ("r!u", Lang::En),
            ("russian", Lang::En),
            ("rus-RU", Lang::En),
            // `q=0` refuses a language, whatever `*` says.
            ("ru;q=0", Lang::En),
            ("*, en;q=0", Lang::Ru),
            ("ru;q=0, *", Lang::En),
            ("*", Lang::En),
            ("de, *;q=0.1", Lang::En),
            ("en;q=0.1, *;q=0.5", Lang::Ru),
            // The best range of a language counts.
            ("en;q=0.2, ru;q=0.5, en-US;q=0.9", Lang::En),
            ("ru_RU", Lang::Ru),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
        }
        let long = format!("{}ru", "x,".repeat(10_000));
        assert_eq!(Lang::from_accept_language(&long), Lang::En);
    }

    #[test]
    fn locales() {
        assert_eq!(Lang::from_locale("ru"), Some(Lang::Ru));
        assert_eq!(Lang::from_locale("en-US"), Some(Lang::En));
        assert_eq!(Lang::from_locale("de"), None);
        assert_eq!(Lang::from_locale(""), None);
        // The locales a user may store are exactly the shipped languages.
        let stored: Vec<Option<Lang>> = omnihub_core::validate::LOCALES
            .iter()
            .map(|l| Lang::from_locale(l))
            .collect();
        assert_eq!(stored, Lang::ALL.map(Some));
        for lang in Lang::ALL {
            assert_eq!(Lang::from_locale(lang.code()), Some(lang));
        }
    }

    #[test]
    fn mails_follow_the_locale_or_carry_both() {
        let at = DateTime::UNIX_EPOCH;
        let (s, b) = Mail::invite("L", at).render(Some(Lang::Ru));
        assert!(s.contains("приглашение") && b.contains('L') && !b.contains("invited"));
        let (s, b) = Mail::account_setup("L", at).render(Some(Lang::En));
        assert!(s.contains("your account") && b.contains("1970-01-01 00:00 UTC"));
        let (s, b) = Mail::invite("L", at).render(None);
        assert!(s.contains(" / ") && b.contains("пригласили") && b.contains("invited"));
        assert!(b.find("пригласили") < b.find("invited"), "Russian first");
        let (s, b) = Mail::password_reset("https://h/reset-password#token=t", 30)
            .render(Lang::from_locale("ru"));
        assert_eq!(s, "omnihub: сброс пароля");
        assert!(b.contains("30 мин.") && b.contains("#token=t"));
    }
}
