-- Every active user has at least one session, so a month can never count
-- more active users than sessions, nor zero of either.
select
    activity_month,
    active_users,
    session_count

from {{ ref('mau_summary') }}

where
    active_users > session_count
    or active_users < 1
