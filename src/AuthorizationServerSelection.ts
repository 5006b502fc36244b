/**
 * Which of the authorization servers a protected resource lists to try, and in which order.
 * RFC 9728 §2 lets `authorization_servers` name several; discovery tries them in the order given
 * here and takes the first whose metadata is reachable and valid (the others are skipped, all
 * within the overall discovery deadline). The default: the issuer the app configured (`issuer`
 * option), then the one where a client of ours is already registered, then the PRM's order.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 */

/**
 * What a selector knows: the issuers as the PRM lists them, the issuer of the client already
 * stored for this MCP server (if any) and the `issuer` option (if set).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export interface SelectionContext {
  readonly listed: ReadonlyArray<string>
  readonly registeredIssuer: string | undefined
  readonly configuredIssuer: string | undefined
}

/**
 * Returns the issuers to try, in order. Only listed issuers are ever tried: others in the result
 * are dropped (RFC 9728 §2: the resource names its authorization servers, not the client).
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category models
 */
export type AuthorizationServerSelector = (context: SelectionContext) => ReadonlyArray<string>

const same = (a: string, b: string): boolean => a.replace(/\/+$/, "") === b.replace(/\/+$/, "")

/**
 * `listed` with the issuers of `first` (those listed) moved to the front, in `first`'s order.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category combinators
 */
export const moveToFront = (
  listed: ReadonlyArray<string>,
  first: ReadonlyArray<string | undefined>
): ReadonlyArray<string> => {
  const front = first.flatMap((issuer) => issuer === undefined ? [] : listed.filter((l) => same(l, issuer)))
  return [...new Set([...front, ...listed])]
}

/**
 * The PRM's order, unchanged.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category selectors
 */
export const asListed: AuthorizationServerSelector = ({ listed }) => listed

/**
 * Tries these issuers first (when listed), then the others in the PRM's order.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category selectors
 */
export const preferIssuers = (...issuers: ReadonlyArray<string>): AuthorizationServerSelector => ({ listed }) =>
  moveToFront(listed, issuers)

/**
 * Only these issuers (when listed), in this order; the others are never tried.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category selectors
 */
export const onlyIssuers = (...issuers: ReadonlyArray<string>): AuthorizationServerSelector => ({ listed }) =>
  issuers.flatMap((issuer) => listed.filter((l) => same(l, issuer)))

/**
 * The default: the configured issuer, then the one a client is already registered with (no new
 * registration, the stored client keeps working), then the PRM's order.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category selectors
 */
export const preferConfiguredThenRegistered: AuthorizationServerSelector = ({
  configuredIssuer,
  listed,
  registeredIssuer
}) => moveToFront(listed, [configuredIssuer, registeredIssuer])

/**
 * Applies `selector` and keeps only listed issuers, each once.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9728#section-2
 * @since 0.1.0
 * @category combinators
 */
export const order = (selector: AuthorizationServerSelector, context: SelectionContext): ReadonlyArray<string> => [
  ...new Set(selector(context).flatMap((issuer) => context.listed.filter((l) => same(l, issuer))))
]
