/**
 * Exit codes shared by every command, as SPEC and README "Exit codes" give them. Every
 * "outcome → exit code" decision is one of the functions below; commands only apply them.
 *
 * | code | outcome                                                       | exitCodeFor…               |
 * |------|---------------------------------------------------------------|----------------------------|
 * | 0    | ok                                                            | every one                  |
 * | 1    | unexpected failure; a run or a validation ended in error      | Error, Run, Validation     |
 * | 2    | usage, config or safety refusal (UsageError, a bad flag, a    | Error, Run                 |
 * |      | run stopped at its plan's drift limit)                        |                            |
 * | 3    | finished, but some items failed                               | Run                        |
 * | 4    | validation failed; health at --fail-on; a doctor check failed | Validation, Health, Checks |
 * | 130  | interrupted (a second Ctrl-C exits with it at once)           | Run, Validation            |
 */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  ITEMS_FAILED: 3,
  CHECK_FAILED: 4,
  INTERRUPTED: 130,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * An error the operator can act on: a one-line message, the exit code it maps to
 * and, where there is one, the fix.
 */
export class WardrobeError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.FAILURE,
    readonly suggestion?: string,
  ) {
    super(message)
    this.name = 'WardrobeError'
  }
}

/** Usage, config and safety refusals: exit 2, nothing written. */
export class UsageError extends WardrobeError {
  constructor(message: string, suggestion?: string) {
    super(message, ExitCode.USAGE, suggestion)
    this.name = 'UsageError'
  }
}

/**
 * gRPC status codes Firestore reports; matched on codes, never on messages (emulator texts
 * differ), except INVALID_ARGUMENT for a closed transaction (firestore/transaction.ts).
 */
export const GrpcCode = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const

const RETRYABLE = new Set<number>([
  GrpcCode.UNAVAILABLE,
  GrpcCode.RESOURCE_EXHAUSTED,
  GrpcCode.ABORTED,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.CANCELLED,
  GrpcCode.INTERNAL,
  GrpcCode.UNKNOWN,
])

export function grpcCode(err: unknown): number | undefined {
  const code = (err as {code?: unknown})?.code
  return typeof code === 'number' ? code : undefined
}

export function isRetryable(err: unknown): boolean {
  const code = grpcCode(err)
  if (code !== undefined) return RETRYABLE.has(code)
  // Connection resets surface as plain Node errors before gRPC maps them.
  const sys = (err as {code?: unknown})?.code
  return typeof sys === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(sys)
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * A run's exit code: stopped at its plan's drift limit 2 (a safety refusal, distinct from a
 * failure or an interrupt), interrupted 130, failed 1, finished with error items 3, else 0.
 */
export function exitCodeForRun(s: {status: string; failed: number; plan?: {exceeded: string | null} | null}): ExitCode {
  if (s.plan?.exceeded) return ExitCode.USAGE
  if (s.status === 'interrupted') return ExitCode.INTERRUPTED
  if (s.status === 'failed') return ExitCode.FAILURE
  return s.failed > 0 ? ExitCode.ITEMS_FAILED : ExitCode.OK
}

/** A validation's exit code: passed 0, interrupted 130, error 1; failed (or no data to judge) 4. */
export function exitCodeForValidation(r: {status: string}): ExitCode {
  switch (r.status) {
    case 'passed':
      return ExitCode.OK
    case 'interrupted':
      return ExitCode.INTERRUPTED
    case 'error':
      return ExitCode.FAILURE
    default:
      return ExitCode.CHECK_FAILED
  }
}

/** Monitor's gate: health at or past `--fail-on` exits 4, else 0. */
export function exitCodeForHealth(atOrPastFailOn: boolean): ExitCode {
  return atOrPastFailOn ? ExitCode.CHECK_FAILED : ExitCode.OK
}

/** Preflight checks (doctor): one failed exits 4; warnings alone exit 0. */
export function exitCodeForChecks(r: {ok: boolean}): ExitCode {
  return r.ok ? ExitCode.OK : ExitCode.CHECK_FAILED
}

/** An error that ends a command: a WardrobeError's own code, else oclif's (2 for a bad flag), else 1. */
export function exitCodeForError(err: Error & {exitCode?: number; oclif?: {exit?: number}}): number {
  return err instanceof WardrobeError ? err.exitCode : (err.oclif?.exit ?? err.exitCode ?? ExitCode.FAILURE)
}

/** The IAM permission each operation of a run needs. */
const PERMISSIONS = {
  reading: 'datastore.entities.list',
  updating: 'datastore.entities.update',
  writing: 'datastore.entities.create',
} as const
export type AccessOperation = keyof typeof PERMISSIONS

/**
 * Firestore refusing the caller itself (IAM revoked, credentials expired or revoked) as one
 * line naming the operation, the collection and the fix (a run's error is a single line);
 * null for any other error. Never retried: no retry changes the answer, so the run stops
 * at once and keeps its checkpoint.
 */
export function accessError(err: unknown, operation: AccessOperation, collection: string): WardrobeError | null {
  const code = grpcCode(err)
  if (code === GrpcCode.PERMISSION_DENIED) {
    const permission = PERMISSIONS[operation]
    return new WardrobeError(
      `Firestore denied ${operation} ${collection}: the account lacks ${permission} (PERMISSION_DENIED); grant it (e.g. roles/datastore.user), then run the same command again to resume`,
    )
  }
  if (code === GrpcCode.UNAUTHENTICATED) {
    return new CredentialsError(
      `Firestore rejected the credentials ${operation} ${collection}: they are expired, revoked or invalid (UNAUTHENTICATED); renew them (gcloud auth application-default login, or a new service-account key), then run the same command again to resume`,
    )
  }
  return null
}

/** Credentials Firestore rejects: every call fails alike, the run's own record included. */
export class CredentialsError extends WardrobeError {
  constructor(message: string) {
    super(message)
    this.name = 'CredentialsError'
  }
}
