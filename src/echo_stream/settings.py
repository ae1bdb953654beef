"""One settings object, read from the environment (and `.env`) once by the app factory."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def split_list(value: str) -> tuple[str, ...]:
    """Split a comma-separated setting into its non-empty, stripped items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


class Settings(BaseSettings):
    """Every variable is documented in `.env.example`."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # Server
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"

    # Providers
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str = "https://api.anthropic.com"
    anthropic_default_max_tokens: int = Field(4096, ge=1)
    google_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("GOOGLE_API_KEY", "GEMINI_API_KEY")
    )
    google_base_url: str = "https://generativelanguage.googleapis.com"
    echo_config: str | None = None
    mock_delay_ms: float = Field(15.0, ge=0)

    # Upstream behaviour
    upstream_connect_timeout: float = Field(10.0, gt=0)
    upstream_first_token_timeout: float = Field(120.0, gt=0)
    upstream_read_timeout: float = Field(60.0, gt=0)
    upstream_max_retries: int = Field(1, ge=0, le=5)
    upstream_max_connections: int = Field(1000, ge=1)

    # Edge
    echo_api_keys: SecretStr | None = None
    echo_admin_keys: SecretStr | None = None
    allowed_origins: str = ""
    max_request_bytes: int = Field(20 * 1024 * 1024, ge=1024)

    # Ads
    ad_injection_rate: float = Field(0.3, ge=0.0, le=1.0)
    ad_seed: int | None = None
    ad_placement: Literal["inline", "end"] = "inline"
    min_response_length: int = Field(200, ge=0)
    ad_max_per_response: int = Field(1, ge=0)
    ad_min_relevance: float = Field(0.0, ge=0.0, le=1.0)
    ad_fallback: Literal["house", "none"] = "house"
    ad_format: Literal["tags", "markdown"] = "tags"
    ads_file: str | None = None
    ad_track_clicks: bool = False
    public_base_url: str = ""
    ad_free_keys: SecretStr | None = None
    ad_cap_per_window: int = Field(0, ge=0)
    ad_cap_window_seconds: float = Field(3600.0, gt=0)
    ad_no_repeat: bool = False
    ad_sensitive_topics: str = "health,self_harm,politics,minors"
    ad_sensitive_terms: str = ""
    redis_url: str | None = None
    redis_key_prefix: str = "echo:"

    # Conversations (stored chat history, EchoV2's /chat API)
    database_url: str | None = None
    data_dir: str = "data"
    db_migrate_on_start: bool = True
    conversation_retention_days: float = Field(0.0, ge=0)
    conversation_title_model: str | None = None
    chat_default_model: str = "echo-mock"
    chat_total_timeout: float = Field(60.0, gt=0)
    chat_chunk_timeout: float = Field(10.0, gt=0)
    chat_stream_fallback: bool = True
    chat_max_prompt_chars: int = Field(32_000, ge=1)
    # Voice stream (POST /api/stream): text to speech, segments, concurrency
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_model_id: str = "eleven_flash_v2_5"
    elevenlabs_voice_id: str = "JBFqnCBsd6RMkjVDRZzb"
    elevenlabs_output_format: str = "mp3_44100_128"
    elevenlabs_voice_settings: dict[str, float | bool] = Field(
        default_factory=lambda: {"stability": 0.5, "similarity_boost": 0.75}
    )
    inworld_api_key: SecretStr | None = None
    inworld_base_url: str = "https://api.inworld.ai"
    inworld_model_id: str = "inworld-tts-1.5-mini"
    inworld_voice_id: str = "Ashley"
    inworld_audio_encoding: Literal["MP3", "LINEAR16", "OGG_OPUS"] = "MP3"
    offline_voice: str = "en-us"
    offline_voice_rate: int = Field(175, ge=80, le=450)
    tts_default_provider: Literal["", "elevenlabs", "inworld", "offline"] = ""
    tts_connect_timeout: float = Field(10.0, gt=0)
    tts_read_timeout: float = Field(30.0, gt=0)
    tts_concurrency: int = Field(3, ge=1, le=16)
    tts_process_concurrency: int = Field(32, ge=1)
    voice_segment_chars: int = Field(100, ge=10)
    voice_first_segment_chars: int = Field(40, ge=1)
    voice_segment_max_chars: int = Field(250, ge=20)
    voice_default_llm_provider: str = ""
    # Web chat (the page at / and the ad dashboard at /admin)
    web_chat: bool = True
    # Session streams (n8n hand-off): JWT /init-stream, sessions, callback to the Wait node
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal[
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"
    ] = "HS256"
    jwt_public_key: SecretStr | None = None
    jwt_audience: str = ""
    jwt_issuer: str = ""
    jwt_leeway_seconds: float = Field(30.0, ge=0, le=300)
    jwt_resume_url_claim: str = "resumeUrl"
    stream_default_model: str = "echo-mock"
    stream_session_ttl: float = Field(60.0, gt=0)
    stream_max_seconds: float = Field(600.0, gt=0)
    stream_keepalive_seconds: float = Field(15.0, gt=0)
    stream_max_prompt_chars: int = Field(100_000, ge=1)
    n8n_allowed_origins: str = ""
    n8n_private_hosts: str = ""
    n8n_callback_header: str = "X-Echo-Callback-Secret"
    n8n_callback_secret: SecretStr | None = None
    n8n_callback_timeout: float = Field(5.0, gt=0, le=60)
    n8n_callback_retry_seconds: float = Field(30.0, ge=0, le=600)
    # Upstream boundary (issue 7): limits on what an upstream may send, store timeouts
    upstream_max_head_bytes: int = Field(64 * 1024, ge=1024)
    upstream_max_event_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    upstream_max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    upstream_idle_timeout: float = Field(60.0, gt=0)
    redis_timeout: float = Field(1.0, gt=0)
    ad_max_click_targets: int = Field(50_000, ge=1)
    ad_max_tracked_users: int = Field(20_000, ge=1)
    # Operations: logs, metrics, readiness, graceful drain (limits live in ECHO_CONFIG's keys:)
    log_format: Literal["text", "json"] = "text"
    metrics_open: bool = False
    shutdown_grace_seconds: float = Field(30.0, ge=0, le=3600)
    gc_tuning: bool = True
    """Freeze the start-up heap and space out young GC collections (`ops.gc_tuning`)."""

    def client_keys(self) -> tuple[str, ...]:
        """Keys a client may present; empty means the API is open."""
        return split_list(self.echo_api_keys.get_secret_value()) if self.echo_api_keys else ()

    def admin_keys(self) -> tuple[str, ...]:
        """Keys allowed on admin endpoints (ad statistics)."""
        return split_list(self.echo_admin_keys.get_secret_value()) if self.echo_admin_keys else ()

    def ad_free_key_list(self) -> tuple[str, ...]:
        """Client keys whose requests never get ads."""
        return split_list(self.ad_free_keys.get_secret_value()) if self.ad_free_keys else ()

    def origins(self) -> tuple[str, ...]:
        """Origins allowed by CORS; empty disables CORS headers."""
        return split_list(self.allowed_origins)
