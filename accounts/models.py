from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .choices import ProjectKind, Role


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields["is_staff"] = True
        fields["is_superuser"] = True
        return self._create(email, password, **fields)

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Email is the login identifier."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Can log in to the operators' admin.")
    is_active = models.BooleanField(default=True)
    is_trusted = models.BooleanField(
        default=False, help_text="VM requests of a trusted user are approved without review."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA zone the portal shows times in (e.g. Europe/Berlin); empty: the operator's DISPLAY_TIME_ZONE.",
    )
    session_generation = models.PositiveIntegerField(
        default=0, editable=False, help_text="Raised to end every session of the user at once."
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email

    # Sessions store this hash; a session whose hash no longer matches is logged
    # out on its next request. Django hashes the password only; adding the
    # generation lets user_deactivate end all sessions without touching it.
    def _session_hash(self, secret=None) -> str:
        value = f"{self.password}:{self.session_generation}"
        return salted_hmac("accounts.User.session", value, secret=secret, algorithm="sha256").hexdigest()

    def save(self, *args, **kwargs):
        if getattr(self, "staff_powers_withheld", False):
            raise RuntimeError("This user's staff flags were cleared for one API request: reload the user to save.")
        super().save(*args, **kwargs)

    def withhold_staff_powers(self) -> None:
        """For this request only, act as an ordinary user (accounts.authentication); never saved."""
        if self.is_staff or self.is_superuser:
            self.is_staff = self.is_superuser = False
            self.staff_powers_withheld = True

    def get_session_auth_hash(self):
        return self._session_hash()

    def get_session_auth_fallback_hash(self):
        for fallback_secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_hash(secret=fallback_secret)


class Project(models.Model):
    """A tenant: VMs, wallet, invoices and quotas belong to a project."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=ProjectKind.choices, default=ProjectKind.TEAM)
    members = models.ManyToManyField(User, through="Membership", related_name="projects")
    require_2fa = models.BooleanField(default=False, help_text="Members must use two-factor authentication.")
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="membership_unique_user")]

    def __str__(self):
        return f"{self.user} in {self.project} ({self.role})"


class Invitation(models.Model):
    """An emailed offer to join a project with a role. The link carries a
    random token; only its SHA-256 is stored."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self):
        return f"{self.email} to {self.project} ({self.role})"

    @property
    def is_open(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class AccessToken(models.Model):
    """A personal API token. The secret is shown once; only its SHA-256 is
    stored, next to a short public prefix used to find the row."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    read_only = models.BooleanField(default=False, help_text="Only safe (GET, HEAD, OPTIONS) requests.")
    staff = models.BooleanField(
        default=False,
        help_text="Carries its operator's staff powers; made with a current 2FA code, expires within "
        "STAFF_TOKEN_MAX_HOURS. Any other token of a staff user acts as an ordinary user.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class UserSession(models.Model):
    """A browser session of a user, named for the security page's list. The
    session itself lives in Django's session store under ``session_key``;
    revoking deletes it there (accounts.services.session_revoke)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="browser_sessions")
    session_key = models.CharField(max_length=40, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at"]
        indexes = [models.Index(fields=["user", "-last_seen_at"])]

    def __str__(self):
        return f"{self.user} from {self.ip_address or 'unknown'}"


class SSHKey(models.Model):
    """A saved OpenSSH public key: personal (``project`` empty: only its owner sees it)
    or shared with a project's members. VMs keep their own copy of the key text,
    so deleting a saved key changes no VM. Parsed fields come from accounts.sshkeys."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="ssh_keys", help_text="Who saved it.")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="ssh_keys")
    name = models.CharField(max_length=100)
    public_key = models.TextField()
    key_type = models.CharField(max_length=40)
    bits = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=60, help_text="SHA256 fingerprint, as ssh-keygen -l shows it.")
    comment = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "pk"]
        verbose_name = "SSH key"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"], condition=Q(project__isnull=True), name="sshkey_personal_name_unique"
            ),
            models.UniqueConstraint(
                fields=["user", "fingerprint"], condition=Q(project__isnull=True), name="sshkey_personal_key_unique"
            ),
            models.UniqueConstraint(
                fields=["project", "name"], condition=Q(project__isnull=False), name="sshkey_project_name_unique"
            ),
            models.UniqueConstraint(
                fields=["project", "fingerprint"], condition=Q(project__isnull=False), name="sshkey_project_key_unique"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.fingerprint})"


from .devices import BackupCode, BackupCodeDevice, TOTPDevice  # noqa: E402  second-factor devices (encrypted)

__all__ = [
    "AccessToken",
    "BackupCode",
    "BackupCodeDevice",
    "Invitation",
    "Membership",
    "Project",
    "SSHKey",
    "TOTPDevice",
    "User",
    "UserManager",
    "UserSession",
]
