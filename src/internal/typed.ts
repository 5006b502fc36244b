/**
 * The make option of a schema class built from values that are typed already (decoded from the
 * wire, or made by this library): no second validation of what the compiler checked. Effect
 * derives a class's validator anew on every construction when a field transforms (a `Redacted`
 * one): a `StoredToken` then costs about 60 µs to construct, 3 µs without, and a sign-in makes
 * a dozen such records on each side.
 *
 * Values from outside that no schema decoded (a JWT's claims, a caller's argument) keep the
 * constructor's validation.
 *
 * @internal
 */
export const typed = { disableValidation: true } as const
