Feature: Partitions and stalls: the majority serves, the minority refuses, healing loses nothing
  As an operator I need a quorum component that the network cuts in two to go on serving on the
  majority side, to refuse writes on the minority side rather than diverge, and to come back
  whole when the network heals; and a member that stalls must not hold the others up for long.

  Background:
    Given the lab is up

  @partition @quorum
  Scenario Outline: A <component> member cut off from the others refuses writes, the rest serve, and the heal loses nothing
    Given <component> has its full membership
    And a client writes to <component> continuously
    When one <component> member is cut off from the other members
    Then the cut-off <component> member refuses writes for 5 seconds, saying "<refusal>"
    And the client's writes to <component> go on within 30 seconds
    When the partition holds for <hold> seconds
    And the partition is healed
    Then every member of <component> is healthy and agrees on the membership within 240 seconds
    And the longest write gap of <component> is at most 20 seconds
    And every acknowledged write to <component> is still there

    # Held longer than each component's own failure detection, so the heal is a real rejoin:
    # RabbitMQ's net_ticktime is 30 s.
    Examples:
      | component | refusal               | hold |
      | galera    | 1047                  | 15   |
      | etcd      | timed out             | 15   |
      | rabbitmq  | connection or confirm | 40   |

  @partition @quorum
  Scenario Outline: A paused <component> member holds the others up briefly and catches up
    Given <component> has its full membership
    And a client writes to <component> continuously
    When one <component> member is paused for 15 seconds
    Then every member of <component> is healthy and agrees on the membership within 240 seconds
    And the client's writes to <component> go on within 30 seconds
    And the longest write gap of <component> is at most 10 seconds
    And every acknowledged write to <component> is still there

    Examples:
      | component |
      | galera    |
      | etcd      |
      | rabbitmq  |
