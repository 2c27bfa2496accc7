// Types of messages.js (plain JS for the page, which has no build step), for the tests.
export declare const ERROR_MESSAGES: Readonly<Record<string, string>>;
export declare const SESSION_END_MESSAGES: Readonly<Record<string, string>>;
export declare const RECOVERY_FAILURE_MESSAGES: Readonly<Record<string, string>>;
export declare const STATE_LABELS: Readonly<Record<string, string>>;
export declare function messageFor(error: unknown): string;
export declare function sessionEndMessage(reason: string): string;
export declare function recoveryFailureMessage(reason: string): string;
