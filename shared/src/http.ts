/** HTTP routes of the public contract. */
export const Route = {
  Login: "/api/auth/login",
  Logout: "/api/auth/logout",
  Session: "/api/auth/session",
  WsToken: "/api/auth/ws-token",
  Publish: "/api/publish",
  /** `GET ?target=user:<id>|room:<name>&limit=&before=`, behind the publish key: a stream's last events. */
  History: "/api/history",
  Health: "/healthz",
  Ready: "/readyz",
  Metrics: "/metrics",
} as const;

export interface LoginResponse {
  authenticated: true;
}

export interface SessionResponse {
  authenticated: true;
  /** When the session ends if left idle (epoch ms); capped by the absolute max age. */
  expiresAt: number;
}

export interface WsTokenResponse {
  token: string;
  /** Epoch ms after which the token is refused. */
  expiresAt: number;
}
