"""The resilience policy of one source: typed config, validated at the edge."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BreakerPolicy", "RateLimitPolicy", "ResiliencePolicy", "RetryPolicy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Strict):
    attempts: int = Field(5, ge=1)  # total tries, the first one included
    budget: float = Field(60.0, ge=0)  # seconds of waiting allowed across all retries of a call
    backoff: float = Field(0.5, ge=0)  # first backoff ceiling; doubles per retry, full jitter
    max_backoff: float = Field(30.0, ge=0)
    retry_after_cap: float = Field(120.0, ge=0)  # a longer Retry-After fails at once
    retry_500: bool = False  # a 500 is usually a bug, not a blip: not retried unless asked


class RateLimitPolicy(_Strict):
    rate: float = Field(gt=0)  # requests per second, sustained
    burst: int = Field(ge=1)  # bucket capacity
    shared: bool = False  # one bucket across processes (Redis) when a Redis client is given


class BreakerPolicy(_Strict):
    failures: int = Field(5, ge=1)  # consecutive transient failures that open the breaker
    cooldown: float = Field(30.0, ge=0)  # seconds open before one probe is let through


class ResiliencePolicy(_Strict):
    timeout: float = Field(30.0, gt=0)  # per try, until the whole response is read
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    rate_limit: RateLimitPolicy | None = None
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
