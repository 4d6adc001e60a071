// Names for the schemas of the OpenAPI document that the console uses.
import type { components } from './schema';

type S = components['schemas'];
export type Me = S['Me'];
export type Profile = S['Profile'];
export type User = S['User'];
export type Client = S['Client'];
export type Channel = S['ChannelView'];
export type Provider = S['Provider'];
export type ChannelRight = S['ChannelRights'][number];
export type GlobalRight = S['GlobalRights'][number];
export type ChannelGrant = S['ChannelGrant'];
export type Conversation = S['Conversation'];
export type ConversationStatus = S['ConversationStatus'];
export type ConversationSummary = S['ConversationSummary'];
export type ConversationDetail = S['ConversationDetail'];
export type Message = S['Message'];
export type Attachment = S['Attachment'];
export type DeliveryStatus = S['DeliveryStatus'];
export type Contact = S['Contact'];
export type ContactIdentity = S['ContactIdentity'];
export type QuickReply = S['QuickReply'];
export type Employee = S['Employee'];
export type Group = S['Group'];
export type Invite = S['Invite'];
export type ApiToken = S['ApiToken'];
export type AuditEntry = S['AuditEntry'];
export type ClientDetails = S['ClientDetails'];
