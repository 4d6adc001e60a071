// The widget's styles, inside its closed shadow root: nothing of the page reaches in, nothing of
// ours leaks out. `:host` rules are `!important` because the page's important rules (a global
// `* { display: none !important }`) would otherwise win over them on the host element.

export function css(accent: string, text: string, left: boolean): string {
  const side = left ? 'left' : 'right';
  return `
:host{all:initial!important;display:block!important;visibility:visible!important;opacity:1!important;
position:fixed!important;${side}:20px!important;bottom:20px!important;top:auto!important;
${left ? 'right' : 'left'}:auto!important;z-index:2147483647!important;width:auto!important;height:auto!important;
transform:none!important;filter:none!important;clip-path:none!important;pointer-events:auto!important}
*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;font-size:14px;
line-height:1.4;margin:0;padding:0;color:#1f2328;letter-spacing:normal;text-transform:none;text-align:left}
[hidden]{display:none!important}
button{cursor:pointer;border:0;background:none;font:inherit}
.launcher{width:56px;height:56px;border-radius:50%;background:${accent};color:${text};display:flex;
align-items:center;justify-content:center;box-shadow:0 4px 16px rgba(0,0,0,.25);position:relative;
margin-${side}:0;${left ? '' : 'margin-left:auto;'}}
.launcher svg{width:28px;height:28px;fill:${text}}
.badge{position:absolute;top:-4px;${side === 'right' ? 'left' : 'right'}:-4px;min-width:20px;height:20px;border-radius:10px;
background:#d1242f;color:#fff;font-size:12px;font-weight:600;display:flex;align-items:center;justify-content:center;padding:0 6px}
.panel{width:360px;max-width:calc(100vw - 40px);height:520px;max-height:calc(100vh - 100px);background:#fff;
border-radius:12px;box-shadow:0 8px 32px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;margin-bottom:12px}
.head{background:${accent};padding:12px 14px;display:flex;align-items:center;gap:10px}
.head *{color:${text}}
.title{font-weight:600;font-size:15px;flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.who{font-size:12px;opacity:.9}
.avatar{width:32px;height:32px;border-radius:50%;background:rgba(255,255,255,.25);display:flex;align-items:center;
justify-content:center;font-weight:600;flex:none}
.x{font-size:22px;line-height:1;padding:0 4px}
.body{flex:1;overflow-y:auto;padding:12px;background:#f6f8fa;display:flex;flex-direction:column;gap:8px}
.msg{max-width:80%;padding:8px 12px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word;background:#fff;
border:1px solid #d0d7de;align-self:flex-start}
.msg.mine{align-self:flex-end;background:${accent};border-color:${accent}}
.msg.mine,.msg.mine *{color:${text}}
.meta{font-size:11px;opacity:.7;margin-top:2px}
.note{font-size:12px;color:#57606a;text-align:center;align-self:center}
.typing{font-size:12px;color:#57606a;padding:0 12px 6px;background:#f6f8fa}
.links{display:flex;gap:6px;flex-wrap:wrap;padding:8px 12px;border-top:1px solid #d0d7de;align-items:center}
.links span{font-size:12px;color:#57606a}
.links a{font-size:12px;padding:4px 10px;border-radius:12px;border:1px solid #d0d7de;text-decoration:none;color:#1f2328}
.composer{display:flex;gap:8px;padding:10px;border-top:1px solid #d0d7de;background:#fff}
textarea,input{flex:1;border:1px solid #d0d7de;border-radius:8px;padding:8px;resize:none;background:#fff;
display:block;width:100%;outline:none;min-height:0}
textarea:focus,input:focus{border-color:${accent}}
.send{background:${accent};color:${text};border-radius:8px;padding:0 14px;font-weight:600}
form.card{display:flex;flex-direction:column;gap:8px;padding:14px;background:#fff;margin:12px;border-radius:10px;border:1px solid #d0d7de}
form.card label{font-size:12px;color:#57606a}
form.card .send{padding:8px 14px;align-self:flex-start}
.err{font-size:12px;color:#d1242f}
.clip{flex:none;display:flex;align-items:center;padding:0 2px}
.clip svg{width:20px;height:20px;fill:#57606a}
.file{display:block;font-size:13px;text-decoration:underline;word-break:break-all}
.msg.mine .file{color:${text}}
.image{display:block;max-width:100%;max-height:240px;border-radius:8px;margin:2px 0}
`;
}
