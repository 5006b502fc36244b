/**
 * The small HTML pages the loopback callback server shows in the browser (RFC 8252 §7.3): a
 * success page, or the problem in plain words. Everything that came from the authorization
 * server is escaped; the pages load nothing, and are never cached nor leak a referrer (the
 * callback URL carries the authorization code).
 *
 * @internal
 */

/** Escapes text for an HTML text node or a quoted attribute value. @internal */
export const escapeHtml = (text: string): string =>
  text.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`)

/** @internal */
export interface CallbackPage {
  readonly status: number
  readonly title: string
  readonly paragraphs: ReadonlyArray<string>
  readonly tone: "success" | "error"
}

/** Headers sent with every callback page. @internal */
export const pageHeaders: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "pragma": "no-cache",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "connection": "close"
}

/** Renders a page; `title` and `paragraphs` are plain text and are escaped here. @internal */
export const renderPage = (page: CallbackPage): string => {
  const accent = page.tone === "success" ? "#1a7f37" : "#b42318"
  const body = page.paragraphs.map((p) => `    <p>${escapeHtml(p)}</p>`).join("\n")
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>${escapeHtml(page.title)}</title>
  <style>
    body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; background: #f6f7f9; color: #1f2328; }
    main { max-width: 32rem; margin: 12vh auto; padding: 2rem; background: #fff; border-radius: 12px;
      box-shadow: 0 1px 3px rgba(0,0,0,.12); border-top: 6px solid ${accent}; }
    h1 { font-size: 1.4rem; margin: 0 0 1rem; color: ${accent}; }
    p { margin: .5rem 0; overflow-wrap: anywhere; }
  </style>
</head>
<body>
  <main>
    <h1 id="title">${escapeHtml(page.title)}</h1>
${body}
  </main>
</body>
</html>
`
}

/** @internal */
export const successPage: CallbackPage = {
  status: 200,
  title: "Signed in",
  paragraphs: ["Signed in. You can close this tab."],
  tone: "success"
}

/** @internal */
export const deniedPage = (error: string | undefined, description: string): CallbackPage => ({
  status: 200,
  title: "Sign-in was not completed",
  paragraphs: [
    `The authorization server did not grant access: ${description}` +
    (error === undefined || error === description ? "" : ` (${error})`),
    "You can close this tab and try again from the application."
  ],
  tone: "error"
})

/** @internal */
export const failedPage = (detail: string): CallbackPage => ({
  status: 400,
  title: "Sign-in failed",
  paragraphs: [`The sign-in response could not be used: ${detail}`, "You can close this tab and try again."],
  tone: "error"
})

/** @internal */
export const stateMismatchPage: CallbackPage = {
  status: 400,
  title: "This sign-in response is not for the current sign-in",
  paragraphs: [
    "It does not match the sign-in in progress (it may come from an older attempt or another application).",
    "Finish the sign-in in the most recently opened tab."
  ],
  tone: "error"
}

/** @internal */
export const alreadyUsedPage: CallbackPage = {
  status: 410,
  title: "Sign-in already finished",
  paragraphs: ["This sign-in has already finished. You can close this tab."],
  tone: "error"
}

/** @internal */
export const notWaitingPage: CallbackPage = {
  status: 400,
  title: "No sign-in in progress",
  paragraphs: ["The application is not waiting for a sign-in right now. You can close this tab."],
  tone: "error"
}

/** @internal */
export const notFoundPage: CallbackPage = {
  status: 404,
  title: "Not found",
  paragraphs: ["There is nothing here."],
  tone: "error"
}

/** @internal */
export const methodNotAllowedPage: CallbackPage = {
  status: 405,
  title: "Method not allowed",
  paragraphs: ["The sign-in callback only accepts GET."],
  tone: "error"
}
