Feature: Losing members keeps the service; losing a majority refuses writes and loses nothing
  As an operator I need a quorum component to go on serving when one member dies, to refuse
  writes rather than diverge when most members die, and to heal itself when they come back,
  without losing a single write it acknowledged.

  Background:
    Given the lab is up

  @failover @quorum
  Scenario Outline: Losing one <component> member keeps the service
    Given <component> has its full membership
    And a client writes to <component> continuously
    When one <component> member is killed
    Then the <component> quorum holds
    And the client's writes to <component> go on within 30 seconds
    And every member of <component> is healthy and agrees on the membership within 180 seconds
    And the longest write gap of <component> is at most 20 seconds
    And every acknowledged write to <component> is still there

    Examples:
      | component |
      | galera    |
      | etcd      |
      | rabbitmq  |

  @failover @quorum
  Scenario: A killed Galera member catches up by incremental state transfer
    Given galera has its full membership
    And a client writes to galera continuously
    When one galera member is killed
    Then every member of galera is healthy and agrees on the membership within 180 seconds
    And the killed galera member rejoined by incremental state transfer
    And every galera member holds every acknowledged write

  @failover @quorum
  Scenario Outline: Losing a majority of <component> refuses writes, loses nothing and heals
    Given <component> has its full membership
    And a client writes to <component> continuously
    When a majority of the <component> members is lost
    Then the remaining <component> member refuses writes for 5 seconds, saying "<refusal>"
    When the lost <component> members come back
    Then every member of <component> is healthy and agrees on the membership within 240 seconds
    And the client's writes to <component> go on within 60 seconds
    And every acknowledged write to <component> is still there

    Examples:
      | component | refusal               |
      | galera    | 1047                  |
      | etcd      | timed out             |
      | rabbitmq  | connection or confirm |

  @failover
  Scenario: Losing the Galera member that holds the writes
    Given galera has its full membership
    And a client writes to galera continuously
    When the galera member holding writes is killed
    Then the client's writes to galera go on within 30 seconds
    And every member of galera is healthy and agrees on the membership within 180 seconds
    And the longest write gap of galera is at most 20 seconds
    And every acknowledged write to galera is still there
