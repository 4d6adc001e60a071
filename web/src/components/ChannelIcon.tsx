import {
  IconApi,
  IconBrandFacebook,
  IconBrandInstagram,
  IconBrandTelegram,
  IconBrandVk,
  IconBrandWhatsapp,
  IconBrandX,
  IconBrandYoutube,
  IconMail,
  IconMessage,
  IconMessageCircle,
  IconMessages,
  IconPhone,
  IconPhoneCall,
  IconWorld,
} from '@tabler/icons-react';
import type { Provider } from '../api/types';

const ICONS: Record<Provider, typeof IconApi> = {
  api: IconApi,
  widget: IconWorld,
  telegram: IconBrandTelegram,
  whatsapp: IconBrandWhatsapp,
  vk: IconBrandVk,
  ok: IconMessages,
  viber: IconPhone,
  max: IconMessageCircle,
  email: IconMail,
  sms: IconMessage,
  facebook: IconBrandFacebook,
  instagram: IconBrandInstagram,
  x: IconBrandX,
  youtube: IconBrandYoutube,
  asterisk_ari: IconPhoneCall,
  asterisk_ami: IconPhoneCall,
  zadarma: IconPhoneCall,
  twilio: IconPhoneCall,
};

/** The provider's icon; decorative, so the channel name must be said next to it. */
export function ChannelIcon({ provider, size = 16 }: { provider: Provider | undefined; size?: number }) {
  const Icon = (provider && ICONS[provider]) || IconMessage;
  return <Icon size={size} aria-hidden="true" stroke={1.6} />;
}
